package schema

import (
	"fmt"
	"io/fs"
	"slices"
	"time"
)

// Config is a rendered repository: its targets and every environment with its workloads.
// Rendering is deterministic: the same files give an equal Config whatever their order.
type Config struct {
	Targets      map[string]Target      `json:"targets"`
	Environments map[string]Environment `json:"environments"`
	// Previews is the `previews:` section (nil when absent).
	Previews *Previews `json:"previews,omitempty"`
	// Registries is the `registries:` section by host (nil when absent): the registries whose image tags are
	// pinned to digests at plan time.
	Registries map[string]Registry `json:"registries,omitempty"`
	// DNS is the `dns:` section: the routers that serve stable names (Port.Endpoint), by name, each a type
	// ("route53", "clouddns", "azuredns", "edge") and its settings, in the shape of a target.
	DNS map[string]Target `json:"dns,omitempty"`
	// Root is the repository tree the configuration was loaded from (SOPS files are read from it); nil when
	// unknown. Whoever loads a configuration sets it.
	Root fs.FS `json:"-"`
}

// Target is a named provider with its settings, e.g. `local: {type: "docker"}`.
type Target struct {
	Name string `json:"name"`
	// Type selects the provider adapter: "docker", later "swarm", "kubernetes", "nomad", "marathon", "aws", "gcp",
	// "azure".
	Type string `json:"type"`
	// Settings holds the type-specific fields (for docker: host), as decoded JSON values.
	Settings map[string]any `json:"settings,omitempty"`
	Pos      Pos            `json:"-"`
}

// Environment is one deployed copy of the workloads, bound to a branch of the repository.
type Environment struct {
	Name   string `json:"name"`
	Branch string `json:"branch"`
	// Workloads are sorted by Name.
	Workloads []Workload `json:"workloads"`
	// Secrets are the secrets this environment's workloads may use: the top-level ones unified with the
	// environment's own, by name. Only where values come from, never a value.
	Secrets map[string]Secret `json:"secrets,omitempty"`
	// Preview is set on a preview environment only, by the preview controller (never by loading a repository).
	Preview *Preview `json:"preview,omitempty"`
	Pos     Pos      `json:"-"`
}

// Preview says an environment is a pull request's preview: made from the base environment Base with the
// workloads of the pull request's head.
type Preview struct {
	// Number is the pull (merge) request's number; the environment is named PreviewName(Number).
	Number int    `json:"number"`
	Head   string `json:"head"`
	Base   string `json:"base"`
	// Hosts maps "<workload>/<container port>" of each public port to the host name the preview serves it at
	// ("pr-42-x1y2.localhost"): berth's preview router routes it, or the runtime itself (an Ingress rule).
	Hosts map[string]string `json:"hosts,omitempty"`
}

// PreviewName is the name of pull request number's preview environment: "pr-42". It is made from the number
// alone, never from branch text.
func PreviewName(number int) string { return fmt.Sprintf("pr-%d", number) }

// HostKey is the key of Preview.Hosts for a workload's container port.
func HostKey(workload string, port int) string { return fmt.Sprintf("%s/%d", workload, port) }

// Workload returns the workload with the given name and whether it exists.
func (e Environment) Workload(name string) (Workload, bool) {
	for _, w := range e.Workloads {
		if w.Name == name {
			return w, true
		}
	}
	return Workload{}, false
}

// Workload is one container workload as the user declared it, with the schema's defaults filled in.
type Workload struct {
	Name string `json:"name"`
	// Provider names a target in Config.Targets.
	Provider string   `json:"provider"`
	Image    string   `json:"image"`
	Command  []string `json:"command,omitempty"`
	Args     []string `json:"args,omitempty"`
	// Env holds the plain values only; variables set from a secret are in SecretEnv.
	Env map[string]string `json:"env,omitempty"`
	// SecretEnv maps an environment variable to the name of the secret that sets it (a key of
	// Environment.Secrets). No variable is in both Env and SecretEnv.
	SecretEnv map[string]string `json:"secretEnv,omitempty"`
	// Files maps an absolute, clean path in the container to the secret delivered there.
	Files     map[string]File `json:"files,omitempty"`
	Ports     []Port          `json:"ports,omitempty"`
	Replicas  int             `json:"replicas"`
	Resources Resources       `json:"resources"`
	Health    *HealthCheck    `json:"health,omitempty"`
	// Stateful says the workload keeps data its copies do not share (a database): berth never moves it to
	// another target unless Migration.AllowUnsafe.
	Stateful bool `json:"stateful,omitempty"`
	// Migration configures moves between targets: zero when the workload gives none (Moves fills in the
	// defaults).
	Migration Migration `json:"migration,omitzero"`
	// Pos maps a field path relative to the workload ("image", "ports[0].port", "" for the workload itself) to the
	// place in the user's files that set it, for error messages. Not part of the spec.
	Pos map[string]Pos `json:"-"`
}

// Position returns where the field path was set, falling back to the workload itself.
func (w Workload) Position(path string) Pos {
	if p, ok := w.Pos[path]; ok {
		return p
	}
	return w.Pos[""]
}

// Secrets returns the names of the secrets w uses (through SecretEnv or Files), sorted, without repeats.
func (w Workload) Secrets() []string {
	var names []string
	for _, s := range w.SecretEnv {
		names = append(names, s)
	}
	for _, f := range w.Files {
		names = append(names, f.Secret)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// File is a file in the container whose content is a secret's value.
type File struct {
	// Secret names a key of Environment.Secrets.
	Secret string `json:"secret"`
}

// Secret is a named secret: where its value comes from, never the value. Exactly one source is set: SOPS (an
// encrypted file in the repository, decrypted by the controller) or a reference to a secret store that the
// runtime or the provider resolves (AWS, Kubernetes, Nomad, Vault, Azure, GCP).
type Secret struct {
	Name       string            `json:"name"`
	SOPS       *SOPSSecret       `json:"sops,omitempty"`
	AWS        *AWSSecret        `json:"aws,omitempty"`
	Kubernetes *KubernetesSecret `json:"kubernetes,omitempty"`
	Nomad      *NomadSecret      `json:"nomad,omitempty"`
	Vault      *VaultSecret      `json:"vault,omitempty"`
	Azure      *AzureSecret      `json:"azure,omitempty"`
	GCP        *GCPSecret        `json:"gcp,omitempty"`
	// Pos is where the secret was declared: the environment's declaration when it has one, else the top-level
	// one. Errors about the secret's value (cannot decrypt, missing key) are reported here.
	Pos Pos `json:"-"`
}

// Secret source kinds, as Secret.Kind returns them.
const (
	SecretSOPS       = "sops"
	SecretAWS        = "aws"
	SecretKubernetes = "kubernetes"
	SecretNomad      = "nomad"
	SecretVault      = "vault"
	SecretAzure      = "azure"
	SecretGCP        = "gcp"
)

// Kind is the source of the secret's value: one of the Secret* constants, "" for a zero Secret.
func (s Secret) Kind() string {
	switch {
	case s.SOPS != nil:
		return SecretSOPS
	case s.AWS != nil:
		return SecretAWS
	case s.Kubernetes != nil:
		return SecretKubernetes
	case s.Nomad != nil:
		return SecretNomad
	case s.Vault != nil:
		return SecretVault
	case s.Azure != nil:
		return SecretAzure
	case s.GCP != nil:
		return SecretGCP
	}
	return ""
}

// SOPSSecret is a value in a SOPS file of the repository, encrypted for age.
type SOPSSecret struct {
	// File is relative to the directory holding the .cue files, slash-separated and clean; it never leaves it.
	File string `json:"file"`
	// Key is a dotted path into the decrypted document ("db.password"; a decimal segment indexes a list); ""
	// for the whole file.
	Key string `json:"key,omitempty"`
}

// AWSSecret is an AWS Secrets Manager secret or an SSM Parameter Store parameter, by ARN.
type AWSSecret struct {
	// ARN is "arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME" (optionally followed by ECS's
	// ":json-key:version-stage:version-id") or "arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME".
	ARN string `json:"arn"`
	// Service is "secretsmanager" or "ssm", read from the ARN.
	Service string `json:"service"`
}

// KubernetesSecret is an existing Secret in the workload's namespace.
type KubernetesSecret struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// NomadSecret is an item of a Nomad variable.
type NomadSecret struct {
	Path string `json:"path"`
	Key  string `json:"key"`
}

// VaultSecret is a field of a HashiCorp Vault secret.
type VaultSecret struct {
	Path string `json:"path"`
	Key  string `json:"key"`
}

// AzureSecret is an Azure Key Vault secret.
type AzureSecret struct {
	// Vault is the vault's name (https://VAULT.vault.azure.net).
	Vault string `json:"vault"`
	Name  string `json:"name"`
	// Version pins a version (32 hex digits); "" for the latest.
	Version string `json:"version,omitempty"`
}

// GCPSecret is a Secret Manager secret.
type GCPSecret struct {
	// Name is "projects/PROJECT/secrets/SECRET".
	Name string `json:"name"`
	// Version is "latest" (the default) or a version number.
	Version string `json:"version"`
}

// Port is a container port. A public port is reachable at one stable address on the target (for docker, HostPort
// on the host); an internal one only from other workloads of the environment.
type Port struct {
	Name     string `json:"name,omitempty"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"` // "tcp" or "udp"
	Public   bool   `json:"public"`
	// HostPort is the stable public port; defaults to Port for public ports, 0 for internal ones.
	HostPort int `json:"hostPort,omitempty"`
	// Endpoint gives a public port a stable name that follows the workload from target to target; nil for none.
	Endpoint *Endpoint `json:"endpoint,omitempty"`
}

// Endpoint is a public port's stable name, served by one router of Config.DNS (a DNS zone, or berth's edge).
type Endpoint struct {
	// Name is the DNS name ("web.example.com") for a DNS router, or the host:port the edge listens at
	// ("0.0.0.0:80") for an edge.
	Name string `json:"name"`
	// DNS names the router, a key of Config.DNS.
	DNS string `json:"dns"`
	// TTL of the records (DNS routers); a client may keep an answer this long, so a copy is deleted only this
	// long (plus Drain) after it stopped being answered. Default 60s.
	TTL Duration `json:"ttl"`
	// Drain is how long open connections get to finish after a copy stopped being answered. Default 30s.
	Drain Duration `json:"drain"`
}

// Migration is how a workload moves when its provider changes (or its stable name's copies must be merged):
// the new copy is made and ready, its member added, the traffic shifted in Steps, each watched for Interval,
// then the old member is drained and removed, and the old copy deleted.
type Migration struct {
	// Steps are the new copy's successive shares of the traffic, in percent, ascending, ending at 100. Default
	// [10, 50, 100].
	Steps []int `json:"steps"`
	// Interval is how long each step is watched (the new copy's health) before the next; at least the largest
	// TTL of the workload's endpoints is advised. Default 30s.
	Interval Duration `json:"interval"`
	// AllowUnsafe lets a workload without a health check, or a stateful one, move anyway.
	AllowUnsafe bool `json:"allowUnsafe,omitempty"`
}

// Resources are per-replica requests/limits.
type Resources struct {
	// CPUMillis is thousandths of a CPU ("250m" = 250, "1.5" = 1500); 0 means unset.
	CPUMillis int64 `json:"cpuMillis,omitempty"`
	// MemoryBytes is the memory limit ("128Mi" = 134217728); 0 means unset.
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
}

// HealthCheck has exactly one of HTTP, TCP or Command set.
type HealthCheck struct {
	HTTP        *HTTPCheck `json:"http,omitempty"`
	TCP         *TCPCheck  `json:"tcp,omitempty"`
	Command     []string   `json:"command,omitempty"`
	Interval    Duration   `json:"interval"`
	Timeout     Duration   `json:"timeout"`
	Retries     int        `json:"retries"`
	StartPeriod Duration   `json:"startPeriod,omitempty"`
}

// Kind is "http", "tcp" or "command".
func (h *HealthCheck) Kind() string {
	switch {
	case h == nil:
		return ""
	case h.HTTP != nil:
		return "http"
	case h.TCP != nil:
		return "tcp"
	default:
		return "command"
	}
}

// HTTPCheck passes on a 2xx or 3xx answer to GET Path on Port.
type HTTPCheck struct {
	Path string `json:"path"`
	Port int    `json:"port"`
}

// TCPCheck passes when a connection to Port opens.
type TCPCheck struct {
	Port int `json:"port"`
}

// Duration is a time.Duration that reads and writes as a Go duration string ("5s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Pos is a place in the user's files.
type Pos struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

func (p Pos) String() string {
	if p.File == "" {
		return "-"
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Previews is the repository's `previews:` section: how pull requests get preview environments. It is only ever
// read from the trusted (base) branch; the same section in a pull request's head is ignored, and a change of it
// there is an error (see CheckPreviewHead).
type Previews struct {
	// PR configures the previews of pull (merge) requests; nil when the repository declares none.
	PR *PreviewPolicy `json:"pr,omitempty"`
}

// Preview fork policies.
const (
	// ForksNever gives a pull request from a fork no preview (the default).
	ForksNever = "never"
	// ForksApproveEachCommit gives a fork's pull request a preview of a head commit once a user with write
	// permission approved that very commit (`/berth preview` comment, or the approval label added after it).
	ForksApproveEachCommit = "approve-each-commit"
)

// PreviewPolicy is `previews: pr:`. Zero values are the safe defaults noted on each field.
type PreviewPolicy struct {
	// From is the base environment a preview copies: its targets, secrets policy and workloads, with the
	// workloads of the pull request's head in place of its own.
	From string      `json:"from"`
	When PreviewWhen `json:"when"`
	// Forks is ForksNever (default) or ForksApproveEachCommit.
	Forks string `json:"forks"`
	// ApproveLabel is the label that approves a fork's head (with write permission checked, on the commit that was
	// the head when the label was added); "berth-preview-approved" by default.
	ApproveLabel string `json:"approveLabel"`
	// TTL removes a preview this long after its pull request's last update; 0 keeps it while the pull request is
	// open and selected.
	TTL  Duration    `json:"ttl,omitempty"`
	Max  PreviewMax  `json:"max"`
	Caps PreviewCaps `json:"caps"`
	// Override lists the workload fields a pull request may change, as patterns over the plan's field paths:
	// "workloads.web.image", "workloads.web.env.GREETING", "workloads.web.secretEnv.TOKEN",
	// "workloads.web.files./run/db", "workloads.web.ports[0].port", "workloads.web.health.http.path",
	// "workloads.web.resources.cpuMillis", "workloads.web.provider"; a whole new or removed workload is
	// "workloads.<name>". A map key and a list item ("ports[0]") are one segment each. In a pattern, "*" as a
	// segment matches any one segment, "*" inside one any run of characters ("GREET*", "ports[*]"), and a trailing
	// "**" any rest, none included: "workloads.*.**" lets a pull request change anything of a workload, its
	// provider, secret variables and files included. Default ["workloads.*.image", "workloads.*.env.*"] (plain
	// variables only). A change elsewhere is an error at the head's file:line (see CheckPreviewHead).
	Override []string    `json:"override"`
	Gate     PreviewGate `json:"gate"`
	// Skip names workloads of the base environment that previews leave out.
	Skip []string `json:"skip,omitempty"`
	// Secrets names the environment whose secret declarations previews of same-repository pull requests use;
	// "" (default) gives previews no secrets: a preview whose workloads use one fails, saying so at the workload.
	// Forks never get secrets.
	Secrets string `json:"secrets,omitempty"`
	// Pos maps a field path relative to `previews.pr` ("from", "max.total", "" for the section) to where it was set.
	Pos map[string]Pos `json:"-"`
}

// PreviewWhen selects the pull requests that get a preview.
type PreviewWhen struct {
	// Labels: a pull request needs at least one of them (none: every pull request). ExcludeLabels: any of them
	// excludes it.
	Labels        []string `json:"labels,omitempty"`
	ExcludeLabels []string `json:"excludeLabels,omitempty"`
	// Drafts gives draft pull requests previews too (default false).
	Drafts bool `json:"drafts"`
	// TargetBranches: the pull request's base branch must be one of them (path.Match patterns); default: the base
	// environment's branch.
	TargetBranches []string `json:"targetBranches,omitempty"`
}

// PreviewMax bounds the number of previews; 0 is the default (Total 10, PerAuthor 3). A pull request over a bound
// waits, queued, oldest first; nothing is evicted.
type PreviewMax struct {
	Total     int `json:"total"`
	PerAuthor int `json:"perAuthor"`
}

// PreviewCaps bound each preview workload: its replicas, CPU and memory are cut to them (0: replicas 1, CPU and
// memory as the base has them).
type PreviewCaps struct {
	Replicas    int   `json:"replicas"`
	CPUMillis   int64 `json:"cpuMillis,omitempty"`
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
}

// PreviewGate holds a preview back until the named commit statuses are green on the head commit.
type PreviewGate struct {
	Statuses []string `json:"statuses,omitempty"`
}
