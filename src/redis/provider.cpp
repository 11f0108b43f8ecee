// filled in by the provider
