package secretsemu

import (
	"bytes"
	"crypto/sha256"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Staging labels Secrets Manager manages itself.
const (
	StageCurrent  = "AWSCURRENT"
	StagePrevious = "AWSPREVIOUS"
	StagePending  = "AWSPENDING"
)

// Limits of Secrets Manager, as its quotas page and API reference give them.
const (
	MaxSecretValueBytes  = 65536 // SecretString or SecretBinary
	MaxSecretNameLen     = 512
	MaxVersionsPerSecret = 100 // beyond it the oldest versions without a label are removed
	MaxStagesPerVersion  = 20
)

var secretNameRE = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]+$`)

type secret struct {
	arn, name   string
	description string
	kmsKeyID    string
	tags        []Tag
	created     time.Time
	changed     time.Time
	accessed    time.Time // zero until first read
	deleted     time.Time // zero unless scheduled for deletion
	versions    []*version
}

type version struct {
	id      string
	str     *string
	bin     []byte
	stages  []string
	created time.Time
}

// Tag is a Secrets Manager or SSM tag.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

func (s *Server) secretsManager(op string, body []byte) (any, *apiError) {
	switch op {
	case "GetSecretValue":
		return s.getSecretValue(body)
	case "DescribeSecret":
		return s.describeSecret(body)
	case "CreateSecret":
		return s.createSecret(body)
	case "PutSecretValue":
		return s.putSecretValue(body)
	case "DeleteSecret":
		return s.deleteSecret(body)
	case "RestoreSecret":
		return s.restoreSecret(body)
	}
	return nil, errf("UnknownOperationException", "operation %s is not emulated", op)
}

func notFound() *apiError {
	return errf("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
}

func markedForDeletion() *apiError {
	return errf("InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.")
}

func (s *Server) secretARNPrefix() string {
	return "arn:aws:secretsmanager:" + s.opts.Region + ":" + s.opts.Account + ":secret:"
}

// findSecret resolves a SecretId: a name, a full ARN, or a partial ARN (the ARN without its random suffix).
func (s *Server) findSecret(id string) *secret {
	if id == "" {
		return nil
	}
	if name, ok := strings.CutPrefix(id, s.secretARNPrefix()); ok {
		for _, sec := range s.secrets {
			if sec.arn == id {
				return sec
			}
		}
		return s.secrets[name]
	}
	if strings.HasPrefix(id, "arn:") {
		return nil
	}
	return s.secrets[id]
}

func (s *Server) lookup(op, id string) (*secret, *apiError) {
	if id == "" {
		return nil, errf("InvalidParameterException", "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null")
	}
	sec := s.findSecret(id)
	if sec == nil {
		if s.isDenied(op, id) {
			return nil, s.accessDenied(SecretsManager, op, id)
		}
		return nil, notFound()
	}
	if s.isDenied(op, sec.name) {
		return nil, s.accessDenied(SecretsManager, op, sec.arn)
	}
	return sec, nil
}

// arnSuffix is the six random characters Secrets Manager appends to an ARN, derived here from the name and a
// counter so that answers are reproducible.
func (s *Server) arnSuffix(name string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	s.seq++
	sum := sha256.Sum256([]byte(name + "\x00" + strconv.Itoa(s.seq)))
	out := make([]byte, 6)
	for i := range out {
		out[i] = alphabet[int(sum[i])%len(alphabet)]
	}
	return string(out)
}

type valueIn struct {
	ClientRequestToken *string
	SecretString       *string
	SecretBinary       []byte
	VersionStages      []string
}

func checkValue(v valueIn) *apiError {
	if v.SecretString != nil && v.SecretBinary != nil {
		return errf("InvalidParameterException", "You can't specify both a binary secret value and a string secret value in the same secret.")
	}
	if (v.SecretString != nil && len(*v.SecretString) > MaxSecretValueBytes) || len(v.SecretBinary) > MaxSecretValueBytes {
		return errf("InvalidParameterException", "The secret value exceeds the maximum allowed size of %d bytes.", MaxSecretValueBytes)
	}
	if t := v.ClientRequestToken; t != nil && (len(*t) < 32 || len(*t) > 64) {
		return errf("InvalidParameterException", "1 validation error detected: Value at 'clientRequestToken' failed to satisfy constraint: Member must have length between 32 and 64")
	}
	if len(v.VersionStages) > MaxStagesPerVersion {
		return errf("InvalidParameterException", "1 validation error detected: Value at 'versionStages' failed to satisfy constraint: Member must have length less than or equal to %d", MaxStagesPerVersion)
	}
	return nil
}

func sameValue(ver *version, v valueIn) bool {
	if (ver.str == nil) != (v.SecretString == nil) || (ver.str != nil && *ver.str != *v.SecretString) {
		return false
	}
	return bytes.Equal(ver.bin, v.SecretBinary)
}

// addVersion adds a version holding v's value and moves its labels (default AWSCURRENT) to it; when AWSCURRENT
// moves, the version that had it gets AWSPREVIOUS. It returns the existing version for a repeated token with the
// same value.
func (s *Server) addVersion(sec *secret, v valueIn) (*version, *apiError) {
	id := uuid()
	if v.ClientRequestToken != nil {
		id = *v.ClientRequestToken
	}
	for _, ver := range sec.versions {
		if ver.id == id {
			if sameValue(ver, v) {
				return ver, nil
			}
			return nil, errf("ResourceExistsException", "You can't modify an existing version, you can only create a new version.")
		}
	}
	stages := v.VersionStages
	if len(stages) == 0 {
		stages = []string{StageCurrent}
	}
	now := s.opts.Now()
	ver := &version{id: id, bin: slices.Clone(v.SecretBinary), created: now, stages: slices.Clone(stages)}
	if v.SecretString != nil {
		ver.str = new(*v.SecretString)
	}
	var oldCurrent *version
	for _, old := range sec.versions {
		if slices.Contains(old.stages, StageCurrent) && slices.Contains(stages, StageCurrent) {
			oldCurrent = old
		}
		old.stages = slices.DeleteFunc(old.stages, func(l string) bool { return slices.Contains(stages, l) })
	}
	if oldCurrent != nil && !slices.Contains(stages, StagePrevious) {
		for _, old := range sec.versions {
			old.stages = slices.DeleteFunc(old.stages, func(l string) bool { return l == StagePrevious })
		}
		oldCurrent.stages = append(oldCurrent.stages, StagePrevious)
	}
	sec.versions = append(sec.versions, ver)
	for len(sec.versions) > MaxVersionsPerSecret {
		i := slices.IndexFunc(sec.versions, func(v *version) bool { return len(v.stages) == 0 })
		if i < 0 {
			break
		}
		sec.versions = slices.Delete(sec.versions, i, i+1)
	}
	sec.changed = now
	return ver, nil
}

// Secrets Manager's tag limits: at most 50 tags on a secret, keys of 1–128 and values of 0–256 characters.
const (
	MaxTags        = 50
	MaxTagKeyLen   = 128
	MaxTagValueLen = 256
)

// checkTags applies Secrets Manager's tag limits to a request's tags: their number and lengths (in the words of
// the service's validation errors, answered as InvalidParameterException like its other length constraints here),
// and the reserved aws: prefix.
func checkTags(tags []Tag) *apiError {
	if len(tags) > MaxTags {
		return errf("InvalidParameterException", "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to %d", MaxTags)
	}
	for i, t := range tags {
		switch {
		case t.Key == "" || utf8.RuneCountInString(t.Key) > MaxTagKeyLen:
			return errf("InvalidParameterException", "1 validation error detected: Value at 'tags.%d.member.key' failed to satisfy constraint: Member must have length between 1 and %d", i+1, MaxTagKeyLen)
		case utf8.RuneCountInString(t.Value) > MaxTagValueLen:
			return errf("InvalidParameterException", "1 validation error detected: Value at 'tags.%d.member.value' failed to satisfy constraint: Member must have length less than or equal to %d", i+1, MaxTagValueLen)
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return errf("InvalidParameterException", "Invalid tag key. Tag keys with the prefix aws: are reserved.")
		}
	}
	return nil
}

func (s *Server) createSecret(body []byte) (any, *apiError) {
	var in struct {
		valueIn
		Name        string
		Description string
		KmsKeyId    string
		Tags        []Tag
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	switch {
	case in.Name == "":
		return nil, errf("InvalidParameterException", "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	case len(in.Name) > MaxSecretNameLen || !secretNameRE.MatchString(in.Name):
		return nil, errf("InvalidParameterException", "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
	}
	if err := checkValue(in.valueIn); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if len(in.VersionStages) > 0 {
		return nil, errf("InvalidParameterException", "CreateSecret takes no VersionStages: its first version is AWSCURRENT.")
	}
	if s.isDenied("CreateSecret", in.Name) {
		return nil, s.accessDenied(SecretsManager, "CreateSecret", in.Name)
	}
	if old := s.secrets[in.Name]; old != nil {
		if !old.deleted.IsZero() {
			return nil, errf("InvalidRequestException", "You can't create this secret because a secret with this name is already scheduled for deletion.")
		}
		if t := in.ClientRequestToken; t != nil && len(old.versions) > 0 && old.versions[0].id == *t && sameValue(old.versions[0], in.valueIn) {
			return map[string]any{"ARN": old.arn, "Name": old.name, "VersionId": *t}, nil
		}
		return nil, errf("ResourceExistsException", "The operation failed because the secret %s already exists.", in.Name)
	}
	now := s.opts.Now()
	sec := &secret{arn: s.secretARNPrefix() + in.Name + "-" + s.arnSuffix(in.Name), name: in.Name,
		description: in.Description, kmsKeyID: in.KmsKeyId, tags: in.Tags, created: now, changed: now}
	out := map[string]any{"ARN": sec.arn, "Name": sec.name}
	if in.SecretString != nil || in.SecretBinary != nil {
		ver, err := s.addVersion(sec, in.valueIn)
		if err != nil {
			return nil, err
		}
		out["VersionId"] = ver.id
	}
	s.secrets[in.Name] = sec
	return out, nil
}

func (s *Server) putSecretValue(body []byte) (any, *apiError) {
	var in struct {
		valueIn
		SecretId string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkValue(in.valueIn); err != nil {
		return nil, err
	}
	if in.SecretString == nil && in.SecretBinary == nil {
		return nil, errf("InvalidRequestException", "You must provide either SecretString or SecretBinary.")
	}
	sec, err := s.lookup("PutSecretValue", in.SecretId)
	if err != nil {
		return nil, err
	}
	if !sec.deleted.IsZero() {
		return nil, markedForDeletion()
	}
	ver, err := s.addVersion(sec, in.valueIn)
	if err != nil {
		return nil, err
	}
	return map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": ver.id, "VersionStages": slices.Clone(ver.stages)}, nil
}

func (s *Server) getSecretValue(body []byte) (any, *apiError) {
	var in struct{ SecretId, VersionId, VersionStage string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	sec, err := s.lookup("GetSecretValue", in.SecretId)
	if err != nil {
		return nil, err
	}
	if !sec.deleted.IsZero() {
		return nil, markedForDeletion()
	}
	stage := in.VersionStage
	if stage == "" && in.VersionId == "" {
		stage = StageCurrent
	}
	var ver *version
	for _, v := range sec.versions {
		if (in.VersionId == "" || v.id == in.VersionId) && (stage == "" || slices.Contains(v.stages, stage)) {
			ver = v
		}
	}
	if ver == nil {
		switch {
		case in.VersionId != "" && stage != "":
			return nil, errf("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %s and staging label: %s", in.VersionId, stage)
		case in.VersionId != "":
			return nil, errf("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %s", in.VersionId)
		default:
			return nil, errf("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: %s", stage)
		}
	}
	if s.broken[sec.name] {
		return nil, errf("DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key.")
	}
	now := s.opts.Now().UTC()
	sec.accessed = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	out := map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": ver.id, "VersionStages": slices.Clone(ver.stages),
		"CreatedDate": epoch(ver.created)}
	if ver.str != nil {
		out["SecretString"] = *ver.str
	} else {
		out["SecretBinary"] = ver.bin
	}
	return out, nil
}

func (s *Server) describeSecret(body []byte) (any, *apiError) {
	var in struct{ SecretId string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	sec, err := s.lookup("DescribeSecret", in.SecretId)
	if err != nil {
		return nil, err
	}
	stages := map[string][]string{}
	for _, v := range sec.versions {
		if len(v.stages) > 0 {
			stages[v.id] = slices.Clone(v.stages)
		}
	}
	out := map[string]any{"ARN": sec.arn, "Name": sec.name, "CreatedDate": epoch(sec.created),
		"LastChangedDate": epoch(sec.changed), "RotationEnabled": false, "VersionIdsToStages": stages}
	if sec.description != "" {
		out["Description"] = sec.description
	}
	if sec.kmsKeyID != "" {
		out["KmsKeyId"] = sec.kmsKeyID
	}
	if len(sec.tags) > 0 {
		out["Tags"] = sec.tags
	}
	if !sec.accessed.IsZero() {
		out["LastAccessedDate"] = epoch(sec.accessed)
	}
	if !sec.deleted.IsZero() {
		out["DeletedDate"] = epoch(sec.deleted)
	}
	return out, nil
}

func (s *Server) deleteSecret(body []byte) (any, *apiError) {
	var in struct {
		SecretId                   string
		RecoveryWindowInDays       *int64
		ForceDeleteWithoutRecovery bool
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.ForceDeleteWithoutRecovery && in.RecoveryWindowInDays != nil {
		return nil, errf("InvalidParameterException", "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	days := int64(30)
	if in.RecoveryWindowInDays != nil {
		days = *in.RecoveryWindowInDays
		if days < 7 || days > 30 {
			return nil, errf("InvalidParameterException", "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
		}
	}
	sec, err := s.lookup("DeleteSecret", in.SecretId)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	if in.ForceDeleteWithoutRecovery {
		delete(s.secrets, sec.name)
		return map[string]any{"ARN": sec.arn, "Name": sec.name, "DeletionDate": epoch(now)}, nil
	}
	if !sec.deleted.IsZero() {
		return nil, markedForDeletion()
	}
	sec.deleted = now
	return map[string]any{"ARN": sec.arn, "Name": sec.name, "DeletionDate": epoch(now.Add(time.Duration(days) * 24 * time.Hour))}, nil
}

func (s *Server) restoreSecret(body []byte) (any, *apiError) {
	var in struct{ SecretId string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	sec, err := s.lookup("RestoreSecret", in.SecretId)
	if err != nil {
		return nil, err
	}
	sec.deleted = time.Time{}
	return map[string]any{"ARN": sec.arn, "Name": sec.name}, nil
}

// SetSecretString creates the named secret or gives it a new AWSCURRENT version holding value, out of band (as
// an operator or a rotation function would), and returns its ARN and the new version's id.
func (s *Server) SetSecretString(name, value string) (arn, versionID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[name]
	if sec == nil {
		now := s.opts.Now()
		sec = &secret{arn: s.secretARNPrefix() + name + "-" + s.arnSuffix(name), name: name, created: now, changed: now}
		s.secrets[name] = sec
	}
	ver, _ := s.addVersion(sec, valueIn{SecretString: &value})
	return sec.arn, ver.id
}

// SecretARN is the full ARN of the named secret ("" when it does not exist).
func (s *Server) SecretARN(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := s.secrets[name]; sec != nil {
		return sec.arn
	}
	return ""
}
