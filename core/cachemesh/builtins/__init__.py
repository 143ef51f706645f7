"""Built-in components, registered through the same hooks as installed plugins."""
