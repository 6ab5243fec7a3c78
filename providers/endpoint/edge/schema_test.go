package edge

import "github.com/berth-dev/berth/schema"

func schemaTarget(settings map[string]any) schema.Target {
	return schema.Target{Name: "edge", Type: Type, Settings: settings}
}
