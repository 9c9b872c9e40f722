/// Code that runs around every call a server handles, outermost first.
public protocol ServerInterceptor: Sendable {
    /// Runs `next` (the rest of the chain and the handler), possibly inspecting or refusing the call.
    func intercept(context: ServerContext, next: @Sendable (ServerContext) async throws -> Void) async throws
}

/// Establishes the caller's identity from request metadata, or refuses the call.
public struct AuthenticationInterceptor: ServerInterceptor {
    /// Returns the principal for a call, nil to let it through anonymously, or throws `UNAUTHENTICATED`.
    public typealias Authenticate = @Sendable (ServerContext) async throws -> RPCPrincipal?

    private let authenticate: Authenticate
    private let exemptServices: Set<String>

    /// Creates the interceptor; calls to `exemptServices` (health, reflection) skip authentication.
    public init(
        exemptServices: Set<String> = [
            "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
        ], authenticate: @escaping Authenticate
    ) {
        self.authenticate = authenticate
        self.exemptServices = exemptServices
    }

    /// Authenticates, records the principal in the context and continues.
    public func intercept(context: ServerContext, next: @Sendable (ServerContext) async throws -> Void) async throws {
        if !exemptServices.contains(context.method.service) {
            context.principal = try await authenticate(context)
        }
        try await next(context)
    }
}
