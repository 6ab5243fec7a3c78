package edge_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/providers/endpoint/edge"
)

// An edge, a backend, and the controller's Router client making a stable name serve it.
func Example() {
	dir, _ := os.MkdirTemp("", "edge-example")
	defer os.RemoveAll(dir)
	srv, err := edge.Start(edge.Options{State: filepath.Join(dir, "edge.json"), Admin: "unix://" + filepath.Join(dir, "admin.sock")})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	backend, _ := net.Listen("tcp", "127.0.0.1:0")
	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			fmt.Fprint(c, "hello from the backend")
			c.Close()
		}
	}()

	router, _ := edge.NewRouter(srv.AdminAddr(), nil)
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	name := free.Addr().String()
	free.Close()
	owner := endpoint.Owner{Instance: "berth", Environment: "prod", Workload: "web"}
	err = router.Set(context.Background(), owner, name, time.Minute,
		[]endpoint.Member{{Target: "docker", Addresses: []string{backend.Addr().String()}, Weight: 100}})
	if err != nil {
		panic(err)
	}

	c, _ := net.Dial("tcp", name)
	b, _ := io.ReadAll(c)
	c.Close()
	fmt.Println(string(b))
	// Output: hello from the backend
}
