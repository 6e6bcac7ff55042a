"""Create the "Translation reviewers" group with the review permissions.

Reviewers approve, reject, edit and re-translate (``approve_translation``) and see the rows
(``view_translation``); publishing (``publish_translation``) is granted separately to
publishers, by adding the permission to a user or another group.
"""

from __future__ import annotations

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Translation reviewers"
CODENAMES = ("view_translation", "change_translation", "approve_translation", "view_translationevent")


def create_group(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate): make sure they exist.
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, apps=apps, verbosity=0)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    perms = Permission.objects.filter(content_type__app_label="translations", codename__in=CODENAMES)
    group.permissions.add(*perms)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("translations", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
