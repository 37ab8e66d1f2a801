"""The HTTP edge: the resolver factory, caller identity and access checks, the one error
shape, and the request/response models (`edge.models`) the OpenAPI document is built from."""
