package proxy_test

import (
	"fmt"
	"io"
	"net"

	"github.com/berth-dev/berth/providers/docker/proxy"
)

func Example() {
	// A backend that greets and hangs up.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello\n")
			c.Close()
		}
	}()

	p, err := proxy.Listen("127.0.0.1:0", nil)
	if err != nil {
		panic(err)
	}
	defer p.Close()
	p.Add(proxy.Backend{ID: "replica-0", Addr: ln.Addr().String()})

	c, _ := net.Dial("tcp", p.Addr().String())
	defer c.Close()
	b, _ := io.ReadAll(c)
	fmt.Print(string(b))
	// Output: hello
}
