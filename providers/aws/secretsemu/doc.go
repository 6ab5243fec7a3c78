// Package secretsemu is a wire-level emulator of the parts of AWS Secrets Manager and of the SSM Parameter Store
// that berth resolves secrets from. Both are AWS JSON 1.1 services (POST /, Content-Type
// application/x-amz-json-1.1, X-Amz-Target secretsmanager.<Op> or AmazonSSM.<Op>), so one httptest server answers
// both, and the real aws-sdk-go-v2 clients (service/secretsmanager, service/ssm) talk to it unchanged: only
// BaseEndpoint and the (static) credentials differ.
//
// Operations implemented:
//
//	secretsmanager  GetSecretValue (SecretId: name, full ARN or partial ARN; VersionId; VersionStage, default
//	                AWSCURRENT), DescribeSecret (VersionIdsToStages, dates; needs no decryption), CreateSecret,
//	                PutSecretValue, DeleteSecret (recovery window 7..30 days, default 30, or
//	                ForceDeleteWithoutRecovery), RestoreSecret
//	ssm             GetParameter (name, ARN, name:version; WithDecryption), PutParameter (Overwrite), DeleteParameter
//
// Behaviour that matters to a provider:
//   - Versions and staging labels as Secrets Manager keeps them: a new version (PutSecretValue without
//     VersionStages, or with AWSCURRENT among them) takes AWSCURRENT, the version that had it becomes AWSPREVIOUS and
//     the former AWSPREVIOUS loses its label (deprecated: left out of VersionIdsToStages, still readable by
//     VersionId). ClientRequestToken is the version id and makes retries safe: the same token with the same value
//     returns the existing version, with another value ResourceExistsException. Beyond 100 versions the oldest
//     unlabelled ones are removed.
//   - ARNs carry the six random characters Secrets Manager appends to the name (derived here from the name, so runs
//     are reproducible). DescribeSecret's LastAccessedDate is the day of the last GetSecretValue, truncated as AWS
//     does.
//   - SecureString parameters without WithDecryption answer an opaque base64 ciphertext, derived from the name and
//     version only; a parameter read through a :N selector echoes Selector. Version numbers start at 1 and grow by
//     one per PutParameter; 100 versions are kept.
//   - Errors in the services' JSON shape (__type and X-Amzn-ErrorType with the code, Message; HTTP 400 unless
//     noted): ResourceNotFoundException ("Secrets Manager can't find the specified secret.", and "... the specified
//     secret value for staging label: X" / "for VersionId: X"), InvalidRequestException (a secret marked for
//     deletion: "You can't perform this operation on the secret because it was marked for deletion.", a name
//     scheduled for deletion on CreateSecret), InvalidParameterException (both SecretString and SecretBinary, a bad
//     name, sizes over 65536 bytes, a token outside 32..64 characters), ResourceExistsException,
//     DecryptionFailure (BreakKey), AccessDeniedException (Deny; IAM's "User: ... is not authorized to perform:
//     secretsmanager:GetSecretValue on resource: ..." text); for SSM ParameterNotFound (no message, as SSM
//     answers), ParameterVersionNotFound, ParameterAlreadyExists, HierarchyTypeMismatchException, ValidationException
//     (names prefixed aws or ssm, a path name not starting with /, the 4096-character Standard tier limit, a missing
//     Type on create), HierarchyLevelLimitExceededException (15 levels), InvalidKeyId (BreakKey with
//     WithDecryption), AccessDeniedException.
//   - Authentication as AWS checks it before the signature: a missing SigV4 Authorization header is
//     MissingAuthenticationTokenException; with Options.AccessKeyID set, another key is UnrecognizedClientException
//     ("The security token included in the request is invalid."); a credential scope of another region or service
//     is InvalidSignatureException ("Credential should be scoped to correct service: 'ssm'."). Signatures are not
//     verified.
//   - Faults: Fail(n, kind) and FailOp(op, n, kind) with Throttle (400 ThrottlingException "Rate exceeded"),
//     ServerError (500 InternalServiceError; InternalServerError for SSM), Unavailable (503), Timeout (no answer
//     until the client's context ends, or Close) and Reset (the connection is closed).
//   - Out-of-band hooks: SetSecretString (an operator's or a rotation function's new version), SetParameter,
//     SecretARN, ParameterARN, Deny, BreakKey; Requests and Count report the calls received. Request bodies hold
//     the values a client sent with CreateSecret, PutSecretValue or PutParameter.
//
// Where the official definition is silent: the API references name the error codes of each operation but not all
// their texts, nor which code a length constraint gets. The texts above in quotes are the ones AWS documents or
// answers in public reports; the emulator's own wording is used for: the value size limit, CreateSecret with
// VersionStages (AWS ignores or refuses it; the emulator refuses), the three-way "VersionId: X and staging label: Y"
// not-found text, a PutSecretValue without a value, the InvalidKeyId text (AWS relays the KMS error), and
// HierarchyTypeMismatchException's text. Secrets Manager's length constraints are answered as
// InvalidParameterException (AWS may answer ValidationException). Parameter labels are not emulated: a :label
// selector finds no parameter.
//
// Simplified: one account and region; no rotation (RotationEnabled is false; a rotation is emulated by
// PutSecretValue or SetSecretString), replication, resource policies, ListSecrets, ListSecretVersionIds,
// UpdateSecretVersionStage, GetParametersByPath, parameter policies, labels or tags on read; KMS key ids are stored,
// not checked; a deleted secret never expires (it stays until Close or a forced delete).
package secretsemu
