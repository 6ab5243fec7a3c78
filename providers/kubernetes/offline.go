package kubernetes

import (
	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

func init() { providers.RegisterOffline(Type, Offline) }

// Offline is the kubernetes type's providers.Offline: the target's settings parsed (no kubeconfig read, no
// client), the capabilities every cluster gives (capabilities) and the checks of Validate (validate). A Provider
// reports the same for the same target.
func Offline(t schema.Target) (providers.Capabilities, providers.Validator, error) {
	if _, err := parseSettings(t); err != nil {
		return providers.Capabilities{}, nil, err
	}
	return capabilities(), validator{}, nil
}

// validator is validate as a providers.Validator, for Offline.
type validator struct{}

func (validator) Validate(w schema.Workload) []providers.Problem { return validate(w) }

// How each feature is honoured (Capabilities.How), for the portability matrix of docs/providers.md.
var how = map[string]string{
	providers.FeaturePublicPort:    "LoadBalancer Service <name>-public: port = hostPort, targetPort = port",
	providers.FeatureAddress:       "Service type LoadBalancer: status.loadBalancer.ingress (IP or hostname) at the hostPort; a preview's Ingress host as the URL",
	providers.FeatureHealthHTTP:    "readinessProbe and livenessProbe httpGet",
	providers.FeatureHealthTCP:     "readinessProbe and livenessProbe tcpSocket",
	providers.FeatureHealthCommand: "readinessProbe and livenessProbe exec",
	providers.FeatureCPU:           "container resources: requests = limits (cpu, millicores)",
	providers.FeatureMemory:        "container resources: requests = limits (memory, bytes)",
	providers.FeatureArgs:          "container command and args (args alone keep the image's entrypoint)",
	providers.FeatureRollout:       "Deployment RollingUpdate maxSurge 1, maxUnavailable 0; readiness gates the old pods' removal",
}

// capabilities is what a Deployment and its Services honour on any cluster: every health check kind, limits and
// UDP; public ports are a LoadBalancer Service, and a preview's hosts an Ingress; secrets are SOPS values (in a
// Secret berth owns) or existing Secrets, as env vars or files.
func capabilities() providers.Capabilities {
	c := providers.Capabilities{
		HealthHTTP: true, HealthTCP: true, HealthCommand: true, PublicPorts: true, UDP: true,
		CPULimit: true, MemoryLimit: true,
		SecretKinds: []string{schema.SecretSOPS, schema.SecretKubernetes}, SecretFiles: true,
		HostRoutes: true,
		How:        make(map[string]string, len(how)),
	}
	for k, v := range how {
		c.How[k] = v
	}
	return c
}
