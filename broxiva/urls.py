from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.cache import never_cache

from broxiva import dashboard
from broxiva import views as ops_views
from products import views as product_views

admin.site.site_header = "Broxiva administration"
admin.site.site_title = "Broxiva admin"
admin.site.index_title = "Staff"

urlpatterns = [
    # The Operations page (queue health, outbox, last alerts) for operators, under the admin's URL.
    path("admin/operations/", dashboard.operator_required(never_cache(ops_views.operations)), name="operations"),
    path("admin/", admin.site.urls),
    # The django-rq dashboard, for operators only (broxiva.dashboard: staff with django_rq.admin).
    path("django-rq/", include((dashboard.urlpatterns(), "django_rq"))),
    # Operations (broxiva.views): liveness is open; queue health and metrics take a bearer token.
    path("health/", ops_views.live, name="health-live"),
    re_path(r"^health/live/?$", ops_views.live),
    re_path(r"^health/queues/?$", ops_views.queues, name="health-queues"),
    re_path(r"^health/queue/(?P<name>[^/]+)/?$", ops_views.queue, name="health-queue"),
    re_path(r"^metrics/?$", ops_views.metrics, name="metrics"),
    # Inbound product webhooks (products.views): signed by the shop, CSRF-exempt.
    path("webhooks/<str:source>/<int:connection_id>/", product_views.product_webhook, name="product-webhook"),
    # Per tenant host (seo.urls): /sitemap.xml and its files, /robots.txt, the IndexNow key file.
    path("", include("seo.urls")),
]
