"""The API's endpoints, one module per area; ``api/urls.py`` routes them."""
