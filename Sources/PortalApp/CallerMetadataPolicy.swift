import PortalCrypto
import PortalRPC

/// Decides whether a backend may believe a call's caller metadata (who the member is) when mutual
/// TLS does not vouch for the caller: only from a loopback peer (the gateway on the same host, as in
/// `portal dev`), or from a caller presenting the internal credential configured on both sides.
/// Anything else naming a member is `PERMISSION_DENIED`; calls without caller metadata pass.
struct CallerMetadataPolicy: ServerInterceptor {
    /// The metadata key the gateway's calls carry the internal credential in.
    static let credentialKey = "x-portal-internal-credential"

    /// SHA-256 of the internal credential; nil accepts caller metadata from loopback peers only.
    private let credentialDigest: [UInt8]?

    init(internalCredential: String?) {
        credentialDigest = internalCredential.map { SecretHashing.sha256($0) }
    }

    func intercept(context: ServerContext, next: @Sendable (ServerContext) async throws -> Void) async throws {
        if let key = PrincipalMetadata.vouchedKeys.first(where: {
            context.requestMetadata.firstString(forKey: $0) != nil
        }), !isTrusted(context) {
            throw RPCError(
                .permissionDenied,
                "\(key): caller metadata is accepted only from the gateway (a loopback peer, mutual TLS, or the internal credential)"
            )
        }
        try await next(context)
    }

    private func isTrusted(_ context: ServerContext) -> Bool {
        if let credentialDigest, let presented = context.requestMetadata.firstString(forKey: Self.credentialKey),
            SecretHashing.constantTimeEqual(SecretHashing.sha256(presented), credentialDigest)
        {
            return true
        }
        let address = context.peerAddress
        return address.hasPrefix("127.") || address == "::1" || address.hasPrefix("::ffff:127.")
    }
}

/// A channel whose every call carries the internal credential, so backends believe its caller metadata.
struct CredentialedChannel: RPCChannel {
    let channel: any RPCChannel
    let credential: String

    func openCall(
        _ method: MethodDescriptor, metadata: Metadata, options: CallOptions
    ) async throws -> any ClientCallStream {
        var metadata = metadata
        metadata.addString(credential, forKey: CallerMetadataPolicy.credentialKey)
        return try await channel.openCall(method, metadata: metadata, options: options)
    }
}
