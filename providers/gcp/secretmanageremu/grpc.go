package secretmanageremu

import (
	"context"
	"strings"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
)

// grpcService answers the emulated methods over gRPC; the others are UNIMPLEMENTED.
type grpcService struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer
	s *Server
}

// rpc runs one call through Server.handle, with the token of the call's metadata.
func rpc[T proto.Message](ctx context.Context, s *Server, method string, req proto.Message) (T, error) {
	var token string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, v := range md.Get("authorization") {
			token, _ = strings.CutPrefix(v, "Bearer ")
		}
	}
	var zero T
	out, _, err := s.handle(ctx, method, "grpc", token, req)
	if err != nil {
		return zero, err
	}
	if out == nil {
		return any(&emptypb.Empty{}).(T), nil
	}
	return out.(T), nil
}

func (g *grpcService) CreateSecret(ctx context.Context, r *secretmanagerpb.CreateSecretRequest) (*secretmanagerpb.Secret, error) {
	return rpc[*secretmanagerpb.Secret](ctx, g.s, "CreateSecret", r)
}

func (g *grpcService) GetSecret(ctx context.Context, r *secretmanagerpb.GetSecretRequest) (*secretmanagerpb.Secret, error) {
	return rpc[*secretmanagerpb.Secret](ctx, g.s, "GetSecret", r)
}

func (g *grpcService) DeleteSecret(ctx context.Context, r *secretmanagerpb.DeleteSecretRequest) (*emptypb.Empty, error) {
	return rpc[*emptypb.Empty](ctx, g.s, "DeleteSecret", r)
}

func (g *grpcService) AddSecretVersion(ctx context.Context, r *secretmanagerpb.AddSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	return rpc[*secretmanagerpb.SecretVersion](ctx, g.s, "AddSecretVersion", r)
}

func (g *grpcService) GetSecretVersion(ctx context.Context, r *secretmanagerpb.GetSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	return rpc[*secretmanagerpb.SecretVersion](ctx, g.s, "GetSecretVersion", r)
}

func (g *grpcService) AccessSecretVersion(ctx context.Context, r *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	return rpc[*secretmanagerpb.AccessSecretVersionResponse](ctx, g.s, "AccessSecretVersion", r)
}

func (g *grpcService) DisableSecretVersion(ctx context.Context, r *secretmanagerpb.DisableSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	return rpc[*secretmanagerpb.SecretVersion](ctx, g.s, "DisableSecretVersion", r)
}

func (g *grpcService) EnableSecretVersion(ctx context.Context, r *secretmanagerpb.EnableSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	return rpc[*secretmanagerpb.SecretVersion](ctx, g.s, "EnableSecretVersion", r)
}

func (g *grpcService) DestroySecretVersion(ctx context.Context, r *secretmanagerpb.DestroySecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	return rpc[*secretmanagerpb.SecretVersion](ctx, g.s, "DestroySecretVersion", r)
}
