/// How the connection carrying a call is secured: cleartext, or TLS with what the client proved.
public enum TransportSecurity: Sendable, Hashable {
    /// Cleartext HTTP/2 (prior knowledge).
    case cleartext
    /// TLS; `clientCertificate` is what the client presented, nil when it presented none.
    case tls(clientCertificate: ClientCertificate?)
}

/// A client certificate presented in a TLS handshake, and whether it verified against the server's client CA.
public struct ClientCertificate: Sendable, Hashable {
    /// The certificate's subject, one line (`CN=gateway` style), for logs and messages.
    public var subject: String
    /// DNS names from its subject alternative names.
    public var dnsNames: [String]
    /// IP addresses from its subject alternative names, in text form.
    public var ipAddresses: [String]
    /// URIs from its subject alternative names (SPIFFE ids, for example).
    public var uris: [String]
    /// Why verification failed (`certificate has expired`, …); nil when it chains to the client CA and is in date.
    public var verificationError: String?

    /// Creates a certificate description; the TLS transport does this after each handshake.
    public init(subject: String, dnsNames: [String], ipAddresses: [String], uris: [String], verificationError: String?)
    {
        self.subject = subject
        self.dnsNames = dnsNames
        self.ipAddresses = ipAddresses
        self.uris = uris
        self.verificationError = verificationError
    }

    /// True when the certificate verified against the client CA.
    public var isVerified: Bool { verificationError == nil }
}
