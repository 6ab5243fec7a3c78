package schema

import (
	_ "embed"
	"fmt"
	"regexp"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/parser"
)

// ImportPath is the CUE import path at which the embedded schema is served to repositories:
// `import "berth.dev/schema"`.
const ImportPath = "berth.dev/schema"

// schemaFile is the file name the embedded schema carries in positions; it never names a user file.
const schemaFile = ImportPath + "/berth.cue"

//go:embed berth.cue
var source []byte

// serveSource is the schema of the controller's configuration (berth serve --config), in the same package.
//
//go:embed serve.cue
var serveSource []byte

// Source returns the text of the CUE schema every repository is checked against.
func Source() []byte { return append([]byte(nil), source...) }

// nameRE is the rule for target, environment and workload names; it matches #Name in berth.cue.
var nameRE = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$`)

// defs are the schema's definitions, compiled in one cue.Context.
type defs struct {
	target      cue.Value
	environment cue.Value
	workload    cue.Value
	secret      cue.Value
	previews    cue.Value // #Previews
	registry    cue.Value // #Registry
	serve       cue.Value
	// targetTypes is each target type's own closed definition, chosen by the target's type field so that a
	// mistake is reported against that type's fields rather than as "no alternative matches".
	targetTypes map[string]cue.Value
	// dns and dnsTypes are the same for the routers of the dns section.
	dns      cue.Value
	dnsTypes map[string]cue.Value
}

// schemaInstance parses the embedded schema into a build instance (for imports) of the given build context.
func schemaInstance(bc *build.Context) *build.Instance {
	inst := bc.NewInstance(ImportPath, nil)
	f, err := parser.ParseFile(schemaFile, source)
	if err != nil {
		// The schema is embedded and covered by tests; a parse failure is a build defect.
		panic(fmt.Sprintf("berth: embedded schema does not parse: %v", err))
	}
	if err := inst.AddSyntax(f); err != nil {
		panic(fmt.Sprintf("berth: embedded schema: %v", err))
	}
	sf, err := parser.ParseFile(ImportPath+"/serve.cue", serveSource)
	if err != nil {
		panic(fmt.Sprintf("berth: embedded serve schema does not parse: %v", err))
	}
	if err := inst.AddSyntax(sf); err != nil {
		panic(fmt.Sprintf("berth: embedded serve schema: %v", err))
	}
	inst.ImportPath = ImportPath
	return inst
}

func compileDefs(ctx *cue.Context) defs {
	v := ctx.BuildInstance(schemaInstance(build.NewContext()))
	if err := v.Err(); err != nil {
		panic(fmt.Sprintf("berth: embedded schema does not compile: %v", err))
	}
	return defs{
		target:      v.LookupPath(cue.ParsePath("#Target")),
		environment: v.LookupPath(cue.ParsePath("#Environment")),
		workload:    v.LookupPath(cue.ParsePath("#Workload")),
		secret:      v.LookupPath(cue.ParsePath("#Secret")),
		previews:    v.LookupPath(cue.ParsePath("#Previews")),
		registry:    v.LookupPath(cue.ParsePath("#Registry")),
		serve:       v.LookupPath(cue.ParsePath("#ServeConfig")),
		dns:         v.LookupPath(cue.ParsePath("#DNS")),
		dnsTypes: map[string]cue.Value{
			"route53":  v.LookupPath(cue.ParsePath("#Route53DNS")),
			"clouddns": v.LookupPath(cue.ParsePath("#CloudDNS")),
			"azuredns": v.LookupPath(cue.ParsePath("#AzureDNS")),
			"edge":     v.LookupPath(cue.ParsePath("#EdgeDNS")),
		},
		targetTypes: map[string]cue.Value{
			"docker":     v.LookupPath(cue.ParsePath("#DockerTarget")),
			"aws":        v.LookupPath(cue.ParsePath("#AWSTarget")),
			"gcp":        v.LookupPath(cue.ParsePath("#GCPTarget")),
			"azure":      v.LookupPath(cue.ParsePath("#AzureTarget")),
			"swarm":      v.LookupPath(cue.ParsePath("#SwarmTarget")),
			"kubernetes": v.LookupPath(cue.ParsePath("#KubernetesTarget")),
			"nomad":      v.LookupPath(cue.ParsePath("#NomadTarget")),
			"marathon":   v.LookupPath(cue.ParsePath("#MarathonTarget")),
		},
	}
}
