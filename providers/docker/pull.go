package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/docker/docker/pkg/jsonmessage"
)

// drainPull reads a pull's progress stream to its end and returns the error it reports.
func drainPull(rc io.ReadCloser) error {
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading pull output: %w", err)
		}
		if m.Error != nil {
			return errors.New(m.Error.Message)
		}
	}
}
