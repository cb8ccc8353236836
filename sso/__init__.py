"""Single sign-on with OpenID Connect: identities, and teams that follow the provider's groups."""
