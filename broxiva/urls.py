from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Broxiva administration"
admin.site.site_title = "Broxiva admin"
admin.site.index_title = "Staff"

urlpatterns = [
    path("admin/", admin.site.urls),
    # The django-rq dashboard: every view checks is_staff (django-rq's own decorator).
    path("django-rq/", include("django_rq.urls")),
]
