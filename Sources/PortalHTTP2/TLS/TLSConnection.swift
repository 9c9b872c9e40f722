internal import COpenSSL
import NIOCore
import PortalRPC

/// One TLS session driven in memory: ciphertext in and out through memory BIOs, never a socket.
///
/// Used on its connection's event loop only.
final class TLSConnection {
    /// Where the handshake stands after feeding it bytes.
    enum HandshakeProgress {
        case inProgress
        case done
        case failed(String)
    }

    /// What reading plaintext found after the available records.
    enum ReadOutcome {
        case wantMore
        case closedByPeer
        case failed(String)
    }

    private let ssl: OpaquePointer
    private let input: OpaquePointer
    private let output: OpaquePointer
    private let role: TLSContext.Role
    /// Keeps the context alive as long as the session (OpenSSL also counts it).
    private let context: TLSContext

    /// A session from `context`; a client names the server it expects (SNI and certificate check).
    init(context: TLSContext, serverName: String?) throws {
        ERR_clear_error()
        guard let ssl = SSL_new(context.pointer), let input = BIO_new(BIO_s_mem()), let output = BIO_new(BIO_s_mem())
        else {
            throw TLSConfigurationError("cannot create a TLS session (\(openSSLReason()))")
        }
        SSL_set_bio(ssl, input, output)
        self.ssl = ssl
        self.input = input
        self.output = output
        self.role = context.role
        self.context = context
        switch context.role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            if let serverName { try expect(serverName: serverName) }
        }
    }

    deinit {
        SSL_free(ssl)
    }

    private func expect(serverName: String) throws {
        if Self.isIPAddress(serverName) {
            guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName) == 1 else {
                throw TLSConfigurationError("cannot check the server's certificate for \(serverName)")
            }
        } else {
            guard portal_SSL_set_tlsext_host_name(ssl, serverName) == 1, SSL_set1_host(ssl, serverName) == 1 else {
                throw TLSConfigurationError("cannot check the server's certificate for \(serverName)")
            }
        }
    }

    private static func isIPAddress(_ host: String) -> Bool {
        host.contains(":") || (host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." })
    }

    // MARK: Bytes in and out

    /// Hands ciphertext from the peer to the session.
    func receive(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let written = BIO_write(
                input, bytes.baseAddress! + offset, Int32(min(bytes.count - offset, Int(Int32.max))))
            guard written > 0 else { return }
            offset += Int(written)
        }
    }

    /// True when ciphertext waits to go to the peer.
    var hasOutput: Bool { BIO_ctrl_pending(output) > 0 }

    /// Moves the ciphertext waiting for the peer into `buffer`.
    func drainOutput(into buffer: inout ByteBuffer) {
        while case let pending = BIO_ctrl_pending(output), pending > 0 {
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { target in
                Int(max(BIO_read(output, target.baseAddress, Int32(min(pending, target.count))), 0))
            }
        }
    }

    // MARK: Handshake

    /// Advances the handshake with what has been received.
    func handshake() -> HandshakeProgress {
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .done }
        let error = SSL_get_error(ssl, result)
        if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { return .inProgress }
        return .failed(failureReason(error))
    }

    /// The protocol ALPN selected (`h2`), nil when none.
    var negotiatedProtocol: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// The negotiated version, `TLSv1.3` style.
    var version: String { String(cString: SSL_get_version(ssl)) }

    /// The client certificate the peer presented and the verdict on it (servers only).
    func peerCertificate() -> ClientCertificate? {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        let verdict = SSL_get_verify_result(ssl)
        var dnsNames: [String] = []
        var ipAddresses: [String] = []
        var uris: [String] = []
        if let names = portal_X509_subject_alt_names(certificate) {
            defer { portal_GENERAL_NAMES_free(names) }
            for index in 0..<portal_GENERAL_NAMES_count(names) {
                guard let value = portal_GENERAL_NAMES_string(names, index) else { continue }
                let bytes = UnsafeBufferPointer(
                    start: ASN1_STRING_get0_data(value), count: Int(ASN1_STRING_length(value)))
                switch portal_GENERAL_NAMES_type(names, index) {
                case GEN_DNS: dnsNames.append(String(decoding: bytes, as: UTF8.self))
                case GEN_URI: uris.append(String(decoding: bytes, as: UTF8.self))
                case GEN_IPADD: ipAddresses.append(Self.ipText(bytes))
                default: break
                }
            }
        }
        return ClientCertificate(
            subject: Self.subject(of: certificate), dnsNames: dnsNames, ipAddresses: ipAddresses, uris: uris,
            verificationError: verdict == X509_V_OK ? nil : String(cString: X509_verify_cert_error_string(verdict)))
    }

    private static func subject(of certificate: OpaquePointer) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        X509_NAME_print_ex(bio, X509_get_subject_name(certificate), 0, portal_XN_FLAG_RFC2253())
        var text = [UInt8](repeating: 0, count: 512)
        let count = BIO_read(bio, &text, Int32(text.count))
        return String(decoding: text.prefix(Int(max(count, 0))), as: UTF8.self)
    }

    private static func ipText(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: bytes.count - 1, by: 2)
            .map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }

    // MARK: Application data

    /// Decrypts every complete record received into `buffer`.
    func readPlaintext(into buffer: inout ByteBuffer) -> ReadOutcome {
        while true {
            ERR_clear_error()
            var result: Int32 = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 16 << 10) { target in
                result = SSL_read(ssl, target.baseAddress, Int32(min(target.count, Int(Int32.max))))
                return Int(max(result, 0))
            }
            if result > 0 { continue }
            let error = SSL_get_error(ssl, result)
            switch error {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .wantMore
            case SSL_ERROR_ZERO_RETURN: return .closedByPeer
            default: return .failed(failureReason(error))
            }
        }
    }

    /// Encrypts `bytes`; the records wait in the output until drained.
    func writePlaintext(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            ERR_clear_error()
            let written = SSL_write(ssl, bytes.baseAddress! + offset, Int32(min(bytes.count - offset, Int(Int32.max))))
            guard written > 0 else { return false }
            offset += Int(written)
        }
        return true
    }

    /// Queues close_notify for the peer.
    func shutdown() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }

    private func failureReason(_ error: Int32) -> String {
        let verdict = SSL_get_verify_result(ssl)
        if role == .client, verdict != X509_V_OK {
            ERR_clear_error()
            return "the server's certificate was refused: \(String(cString: X509_verify_cert_error_string(verdict)))"
        }
        if error == SSL_ERROR_SYSCALL || error == SSL_ERROR_SSL { return openSSLReason() }
        return "TLS error \(error)"
    }
}
