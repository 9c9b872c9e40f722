internal import COpenSSL
import Glibc

/// One configured OpenSSL context (`SSL_CTX`): certificates, verification, versions and ALPN `h2`.
///
/// Immutable once built, so connections on any thread create sessions from it.
final class TLSContext: @unchecked Sendable {
    /// Which side of the handshake connections made from this context take.
    enum Role { case server, client }

    let role: Role
    let pointer: OpaquePointer

    private init(role: Role, pointer: OpaquePointer) {
        self.role = role
        self.pointer = pointer
    }

    deinit {
        SSL_CTX_free(pointer)
    }

    /// A server context: certificate and key, ALPN `h2` required (or, on a web listener, `h2` or `http/1.1`
    /// chosen), client certificates requested when a CA is set.
    static func server(_ settings: TLSServerSettings) throws -> TLSContext {
        let context = try make(role: .server, minimumVersion: settings.minimumVersion)
        try context.useCertificate(
            settings.certificateFile, key: settings.keyFile, certificateFlag: "tls-cert", keyFlag: "tls-key")
        switch settings.applicationProtocol {
        case .http2: portal_SSL_CTX_select_alpn_h2(context.pointer)
        case .web: portal_SSL_CTX_select_alpn_web(context.pointer)
        }
        if let clientCA = settings.clientCAFile {
            try context.trust(clientCA, flag: "tls-client-ca")
            guard let names = SSL_load_client_CA_file(clientCA) else {
                throw TLSConfigurationError("tls-client-ca \(clientCA): no CA certificate in it (\(openSSLReason()))")
            }
            SSL_CTX_set_client_CA_list(context.pointer, names)
            portal_SSL_CTX_request_client_certificates(context.pointer)
        }
        return context
    }

    /// A client context: servers verified against the CA, ALPN `h2` offered, a client certificate when set.
    static func client(_ settings: TLSClientSettings) throws -> TLSContext {
        let context = try make(role: .client, minimumVersion: settings.minimumVersion)
        try context.trust(settings.caFile, flag: "tls-ca")
        portal_SSL_CTX_verify_server(context.pointer)
        let h2: [UInt8] = [2, 0x68, 0x32]
        guard SSL_CTX_set_alpn_protos(context.pointer, h2, UInt32(h2.count)) == 0 else {
            throw TLSConfigurationError("cannot offer ALPN h2 (\(openSSLReason()))")
        }
        switch (settings.certificateFile, settings.keyFile) {
        case (let certificate?, let key?):
            try context.useCertificate(certificate, key: key, certificateFlag: "tls-cert", keyFlag: "tls-key")
        case (nil, nil):
            break
        default:
            throw TLSConfigurationError("a client certificate needs both tls-cert and tls-key")
        }
        return context
    }

    /// When the certificate this context presents stops being valid (its `notAfter`), in seconds
    /// since 1970; nil for a client context without a certificate.
    var certificateExpiry: Double? {
        guard let certificate = SSL_CTX_get0_certificate(pointer), let notAfter = X509_get0_notAfter(certificate)
        else { return nil }
        var moment = tm()
        guard ASN1_TIME_to_tm(notAfter, &moment) == 1 else { return nil }
        return Double(timegm(&moment))
    }

    private static func make(role: Role, minimumVersion: TLSVersion) throws -> TLSContext {
        ERR_clear_error()
        guard let pointer = SSL_CTX_new(role == .server ? TLS_server_method() : TLS_client_method()) else {
            throw TLSConfigurationError("cannot create a TLS context (\(openSSLReason()))")
        }
        let context = TLSContext(role: role, pointer: pointer)
        let version = minimumVersion == .v1_3 ? TLS1_3_VERSION : TLS1_2_VERSION
        guard portal_SSL_CTX_set_min_proto_version(pointer, version) == 1 else {
            throw TLSConfigurationError("cannot require TLS \(minimumVersion.rawValue) (\(openSSLReason()))")
        }
        portal_SSL_CTX_harden(pointer)
        return context
    }

    private func useCertificate(_ certificate: String, key: String, certificateFlag: String, keyFlag: String) throws {
        try Self.checkReadable(certificate, flag: certificateFlag)
        try Self.checkReadable(key, flag: keyFlag)
        ERR_clear_error()
        guard SSL_CTX_use_certificate_chain_file(pointer, certificate) == 1 else {
            throw TLSConfigurationError(
                "\(certificateFlag) \(certificate): not a usable PEM certificate (\(openSSLReason()))")
        }
        let mismatch = TLSConfigurationError(
            "\(keyFlag) \(key) does not match the certificate in \(certificateFlag) \(certificate)")
        guard SSL_CTX_use_PrivateKey_file(pointer, key, SSL_FILETYPE_PEM) == 1 else {
            let reason = openSSLReason()
            if reason == "key values mismatch" { throw mismatch }
            throw TLSConfigurationError("\(keyFlag) \(key): not a usable PEM private key (\(reason))")
        }
        guard SSL_CTX_check_private_key(pointer) == 1 else { throw mismatch }
    }

    private func trust(_ caFile: String, flag: String) throws {
        try Self.checkReadable(caFile, flag: flag)
        ERR_clear_error()
        guard SSL_CTX_load_verify_locations(pointer, caFile, nil) == 1 else {
            throw TLSConfigurationError("\(flag) \(caFile): no usable PEM CA certificate (\(openSSLReason()))")
        }
    }

    private static func checkReadable(_ path: String, flag: String) throws {
        guard access(path, R_OK) == 0 else {
            throw TLSConfigurationError("\(flag) \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// The reason of the oldest queued OpenSSL error, then clears the queue; for messages.
func openSSLReason() -> String {
    let code = ERR_get_error()
    ERR_clear_error()
    guard code != 0 else { return "no further detail" }
    if let reason = ERR_reason_error_string(code) { return String(cString: reason) }
    var text = [CChar](repeating: 0, count: 256)
    ERR_error_string_n(code, &text, text.count)
    return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
