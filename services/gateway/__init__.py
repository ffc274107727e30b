"""Gateway: the one public REST API. Authenticates, confines each request to its
organization, and forwards it to the service that owns the resource."""
