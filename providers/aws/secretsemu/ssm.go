package secretsemu

import (
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Parameter types.
const (
	TypeString       = "String"
	TypeStringList   = "StringList"
	TypeSecureString = "SecureString"
)

// Limits of Parameter Store, as its quotas page gives them.
const (
	MaxStandardValue    = 4096
	MaxAdvancedValue    = 8192
	MaxParamNameLen     = 1011 // the name without the ARN prefix
	MaxHierarchyLevels  = 15
	MaxParamVersions    = 100 // beyond it the oldest version is removed from the history
	DefaultSSMKMSKeyID  = "alias/aws/ssm"
	defaultParamTier    = "Standard"
	defaultParamDataTyp = "text"
)

var paramNameRE = regexp.MustCompile(`^[A-Za-z0-9_.\-/]+$`)

type parameter struct {
	name, typ, tier, dataType, keyID, description string
	versions                                      []paramVersion // oldest first; the last is current
}

type paramVersion struct {
	version  int64
	value    string
	modified time.Time
}

func (s *Server) ssm(op string, body []byte) (any, *apiError) {
	switch op {
	case "GetParameter":
		return s.getParameter(body)
	case "PutParameter":
		return s.putParameter(body)
	case "DeleteParameter":
		return s.deleteParameter(body)
	}
	return nil, errf("UnknownOperationException", "operation %s is not emulated", op)
}

func (s *Server) paramARN(name string) string {
	return "arn:aws:ssm:" + s.opts.Region + ":" + s.opts.Account + ":parameter/" + strings.TrimPrefix(name, "/")
}

// paramName resolves a parameter's name from a name or an ARN of this account and region.
func (s *Server) paramName(ref string) string {
	if rest, ok := strings.CutPrefix(ref, "arn:aws:ssm:"+s.opts.Region+":"+s.opts.Account+":parameter/"); ok {
		if s.params[rest] != nil {
			return rest
		}
		return "/" + rest
	}
	return ref
}

func validation(field, constraint string) *apiError {
	return errf("ValidationException", "1 validation error detected: Value at '%s' failed to satisfy constraint: %s", field, constraint)
}

func checkParamName(name string) *apiError {
	lower := strings.ToLower(strings.TrimPrefix(name, "/"))
	switch {
	case name == "":
		return validation("name", "Member must have length greater than or equal to 1")
	case len(name) > MaxParamNameLen:
		return validation("name", "Member must have length less than or equal to 1011")
	case !paramNameRE.MatchString(name):
		return errf("ValidationException", "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_")
	case strings.HasPrefix(lower, "aws") || strings.HasPrefix(lower, "ssm"):
		return errf("ValidationException", "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive).")
	case strings.Contains(name, "/") && !strings.HasPrefix(name, "/"):
		return errf("ValidationException", "Parameter name must be a fully qualified name.")
	case strings.Count(name, "/") > MaxHierarchyLevels:
		return errf("HierarchyLevelLimitExceededException", "A hierarchy can have a maximum of 15 levels.")
	}
	return nil
}

func (s *Server) putParameter(body []byte) (any, *apiError) {
	var in struct {
		Name, Value, Type, KeyId, Description, Tier, DataType string
		Overwrite                                             bool
		Tags                                                  []Tag
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkParamName(in.Name); err != nil {
		return nil, err
	}
	if in.Value == "" {
		return nil, validation("value", "Member must have length greater than or equal to 1")
	}
	if in.Type != "" && !slices.Contains([]string{TypeString, TypeStringList, TypeSecureString}, in.Type) {
		return nil, validation("type", "Member must satisfy enum value set: [SecureString, StringList, String]")
	}
	tier := in.Tier
	switch tier {
	case "", "Standard", "Intelligent-Tiering":
		tier = defaultParamTier
		if len(in.Value) > MaxStandardValue && in.Tier == "Intelligent-Tiering" {
			tier = "Advanced"
		}
	case "Advanced":
	default:
		return nil, validation("tier", "Member must satisfy enum value set: [Advanced, Intelligent-Tiering, Standard]")
	}
	if tier == defaultParamTier && len(in.Value) > MaxStandardValue {
		return nil, errf("ValidationException", "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html")
	}
	if len(in.Value) > MaxAdvancedValue {
		return nil, validation("value", "Member must have length less than or equal to 8192")
	}
	if s.isDenied("PutParameter", in.Name) {
		return nil, s.accessDenied(SSM, "PutParameter", s.paramARN(in.Name))
	}
	p := s.params[in.Name]
	now := s.opts.Now()
	switch {
	case p != nil && !in.Overwrite:
		return nil, errf("ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
	case p == nil && in.Type == "":
		return nil, errf("ValidationException", "A parameter type is required when you create a parameter.")
	case p != nil && in.Type != "" && in.Type != p.typ:
		return nil, errf("HierarchyTypeMismatchException", "The parameter type can't be changed. To change it, delete the parameter and create it again with the new type.")
	case p == nil:
		dt := in.DataType
		if dt == "" {
			dt = defaultParamDataTyp
		}
		p = &parameter{name: in.Name, typ: in.Type, dataType: dt}
		s.params[in.Name] = p
	}
	p.tier = tier
	if in.Description != "" {
		p.description = in.Description
	}
	if p.typ == TypeSecureString {
		p.keyID = in.KeyId
		if p.keyID == "" {
			p.keyID = DefaultSSMKMSKeyID
		}
	}
	next := int64(1)
	if n := len(p.versions); n > 0 {
		next = p.versions[n-1].version + 1
	}
	p.versions = append(p.versions, paramVersion{version: next, value: in.Value, modified: now})
	if len(p.versions) > MaxParamVersions {
		p.versions = slices.Delete(p.versions, 0, 1)
	}
	return map[string]any{"Version": next, "Tier": tier}, nil
}

func (s *Server) getParameter(body []byte) (any, *apiError) {
	var in struct {
		Name           string
		WithDecryption bool
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.Name == "" {
		return nil, validation("name", "Member must have length greater than or equal to 1")
	}
	ref, selector := in.Name, ""
	if i := strings.LastIndex(ref, ":"); i >= 0 && !strings.HasSuffix(ref[:i], ":parameter") && (i > strings.LastIndex(ref, "/")) {
		ref, selector = ref[:i], ref[i:]
	}
	name := s.paramName(ref)
	p := s.params[name]
	if s.isDenied("GetParameter", name) {
		return nil, s.accessDenied(SSM, "GetParameter", s.paramARN(name))
	}
	if p == nil {
		return nil, &apiError{400, "ParameterNotFound", ""}
	}
	v := p.versions[len(p.versions)-1]
	if selector != "" {
		n, err := strconv.ParseInt(selector[1:], 10, 64)
		if err != nil {
			// Labels are not emulated: no label exists.
			return nil, &apiError{400, "ParameterNotFound", ""}
		}
		found := false
		for _, pv := range p.versions {
			if pv.version == n {
				v, found = pv, true
			}
		}
		if !found {
			return nil, errf("ParameterVersionNotFound", "Systems Manager could not find version %d of %s. Verify the version and try again.", n, name)
		}
	}
	value := v.value
	if p.typ == TypeSecureString {
		if in.WithDecryption && s.broken[name] {
			return nil, errf("InvalidKeyId", "The KMS key %s of parameter %s cannot be used to decrypt it (it is disabled or the caller may not use it).", p.keyID, name)
		}
		if !in.WithDecryption {
			value = ciphertext(name, v.version)
		}
	}
	out := map[string]any{"Name": name, "Type": p.typ, "Value": value, "Version": v.version, "ARN": s.paramARN(name),
		"LastModifiedDate": epoch(v.modified), "DataType": p.dataType}
	if selector != "" {
		out["Selector"] = selector
	}
	return map[string]any{"Parameter": out}, nil
}

// ciphertext stands for a SecureString's encrypted value, which GetParameter returns without WithDecryption: an
// opaque base64 blob derived from the name and version only, never from the value.
func ciphertext(name string, v int64) string {
	sum := sha256.Sum256([]byte("ssm-ciphertext\x00" + name + "\x00" + strconv.FormatInt(v, 10)))
	return base64.StdEncoding.EncodeToString(append([]byte{1, 2, 2, 0, 0x78}, append(sum[:], sum[:]...)...))
}

func (s *Server) deleteParameter(body []byte) (any, *apiError) {
	var in struct{ Name string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	name := s.paramName(in.Name)
	if s.isDenied("DeleteParameter", name) {
		return nil, s.accessDenied(SSM, "DeleteParameter", s.paramARN(name))
	}
	if s.params[name] == nil {
		return nil, &apiError{400, "ParameterNotFound", ""}
	}
	delete(s.params, name)
	return map[string]any{}, nil
}

// SetParameter writes a parameter out of band (Overwrite, type kept when it exists), as an operator would, and
// returns its new version.
func (s *Server) SetParameter(name, typ, value string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.params[name]
	if p == nil {
		p = &parameter{name: name, typ: typ, tier: defaultParamTier, dataType: defaultParamDataTyp}
		if typ == TypeSecureString {
			p.keyID = DefaultSSMKMSKeyID
		}
		s.params[name] = p
	}
	next := int64(1)
	if n := len(p.versions); n > 0 {
		next = p.versions[n-1].version + 1
	}
	p.versions = append(p.versions, paramVersion{version: next, value: value, modified: s.opts.Now()})
	return next
}

// ParameterARN is the ARN of the named parameter, whether or not it exists.
func (s *Server) ParameterARN(name string) string { return s.paramARN(name) }
