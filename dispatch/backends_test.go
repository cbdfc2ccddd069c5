package dispatch_test

// backends are the stores the engine tests run on. SQLite first: tests that need only one
// store take it, and it needs no server.
var backends = []backend{sqliteBackend, postgresBackend}
