package nomademu_test

import (
	"fmt"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers/nomad/nomademu"
)

// Nomad variables through the official client, with check-and-set.
func ExampleServer_SetVariable() {
	emu := nomademu.New(nomademu.Options{Manual: true})
	defer emu.Close()
	index := emu.SetVariable("", "nomad/jobs/web", map[string]string{"db_password": "s3cr3t"})

	c, err := api.NewClient(&api.Config{Address: emu.URL()})
	if err != nil {
		panic(err)
	}
	v, _, err := c.Variables().Read("nomad/jobs/web", nil)
	if err != nil {
		panic(err)
	}
	v.Items["db_password"] = "rotated"
	v.ModifyIndex = index - 1 // stale
	_, _, err = c.Variables().CheckedUpdate(v, nil)
	fmt.Println(v.Path, err)
	// Output: nomad/jobs/web cas conflict: expected ModifyIndex 1; found 2
}
