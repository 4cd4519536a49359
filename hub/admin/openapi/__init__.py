"""The admin API's OpenAPI 3.1 document, one module per part."""
