from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "painsite.core"
    label = "core"
    verbose_name = "PainSite core (roles, audit log)"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_migrate

        from painsite.core import auth  # noqa: F401  (connects the lockout audit to django-axes)
        from painsite.core.languages import apply_preference_at_sign_in

        # Permissions are created after each migrate; keep the role groups' permissions in step
        # with ROLE_PERMISSIONS so a new permission reaches its role without a manual step.
        post_migrate.connect(sync_role_groups_after_migrate, dispatch_uid="painsite-sync-role-groups")
        user_logged_in.connect(apply_preference_at_sign_in, dispatch_uid="painsite-language-at-sign-in")


def sync_role_groups_after_migrate(app_config=None, **kwargs) -> None:
    from django.apps import apps

    from painsite.core.roles import sync_role_groups

    # post_migrate is sent app by app, and each app's permissions are created on its own turn:
    # syncing on the last app's turn sees them all (after a test-database flush too, which
    # recreates the permissions after core's turn has passed).
    last_app = [config for config in apps.get_app_configs() if config.models_module is not None][-1]
    if app_config is None or app_config.label == last_app.label:
        sync_role_groups(using=kwargs.get("using", "default"))
