package web_test

import "github.com/aviso-dev/aviso/service"

func serviceTest(typ string) service.TestInput { return service.TestInput{Type: typ} }
