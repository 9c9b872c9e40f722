/// Enforces what a TLS server asks of each call's connection.
///
/// On a TLS server a cleartext connection may call only `grpc.health.v1.Health`, because Kubernetes gRPC
/// probes speak cleartext. With client certificates required, every other call needs one that verified
/// against the client CA, and principal metadata (who the member is) is accepted only from a certificate
/// naming the gateway.
public struct TransportPolicyInterceptor: ServerInterceptor {
    /// The service a cleartext or certificate-less connection may still call.
    public static let healthService = "grpc.health.v1.Health"
    /// How the refusal of a cleartext call begins, so clients can tell it apart and suggest TLS.
    public static let cleartextRefusal = "this server requires TLS"

    private let requireClientCertificate: Bool
    private let gatewayIdentity: String

    /// Creates the policy; `gatewayIdentity` is the DNS name the gateway's client certificate carries.
    public init(requireClientCertificate: Bool, gatewayIdentity: String) {
        self.requireClientCertificate = requireClientCertificate
        self.gatewayIdentity = gatewayIdentity
    }

    /// Refuses the call when its connection does not meet the policy, otherwise continues.
    public func intercept(context: ServerContext, next: @Sendable (ServerContext) async throws -> Void) async throws {
        if context.method.service != Self.healthService {
            try check(context)
        }
        try await next(context)
    }

    private func check(_ context: ServerContext) throws {
        guard case .tls(let certificate) = context.transport else {
            throw RPCError(
                .unauthenticated, "\(Self.cleartextRefusal); cleartext connections may call only \(Self.healthService)")
        }
        guard requireClientCertificate else { return }
        guard let certificate else {
            throw RPCError(.unauthenticated, "a client certificate issued by the internal CA is required")
        }
        if let reason = certificate.verificationError {
            throw RPCError(.unauthenticated, "client certificate \(certificate.subject) was refused: \(reason)")
        }
        if let key = PrincipalMetadata.vouchedKeys.first(where: {
            context.requestMetadata.firstString(forKey: $0) != nil
        }),
            !certificate.dnsNames.contains(gatewayIdentity)
        {
            throw RPCError(
                .permissionDenied,
                "\(key): principal metadata is accepted only from the gateway (a client certificate naming \(gatewayIdentity)), not from \(certificate.subject)"
            )
        }
    }
}
