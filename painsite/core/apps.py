from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "painsite.core"
    label = "core"
    verbose_name = "PainSite core (roles, audit log)"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from painsite.core.roles import sync_role_groups

        # Permissions are created after each migrate; keep the role groups' permissions in step
        # with ROLE_PERMISSIONS so a new permission reaches its role without a manual step.
        post_migrate.connect(sync_role_groups_after_migrate, sender=self)


def sync_role_groups_after_migrate(**kwargs) -> None:
    from painsite.core.roles import sync_role_groups

    sync_role_groups(using=kwargs.get("using", "default"))
