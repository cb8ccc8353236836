from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def sso_enabled() -> bool:
    return bool(settings.PALETTE_OIDC_ENABLED)
