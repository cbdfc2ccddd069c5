package dispatch_test

// backends are the stores the engine tests run on.
var backends = []backend{postgresBackend}
