import Foundation
import Logging
import PortalAPI
import PortalHTTP2
import PortalRPC
import Synchronization
import Testing

/// Our TLS client against our TLS server, with certificates from `scripts/dev-certs`.
@Suite("TLS between the Swift client and server")
struct TLSTests {
    typealias Request = Portal_Testing_V1_EchoRequest

    /// A fresh development CA and service certificates in a temporary folder.
    static func certificates() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("portal-tls-\(UUID().uuidString)")
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let process = Process()
        process.executableURL = repository.appendingPathComponent("scripts/dev-certs")
        process.arguments = ["--out", folder.path]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return folder
    }

    static let logger: Logger = {
        var logger = Logger(label: "tls-test")
        logger.logLevel = .critical
        return logger
    }()

    static func server(_ certificates: URL, service: String) throws -> TLSContextSource {
        let settings = TLSServerSettings(
            certificateFile: certificates.appendingPathComponent("\(service).crt").path,
            keyFile: certificates.appendingPathComponent("\(service).key").path,
            clientCAFile: certificates.appendingPathComponent("ca.crt").path)
        return try .server(settings, logger: logger)
    }

    static func client(_ certificates: URL, presenting service: String?) throws -> TLSContextSource {
        let settings = TLSClientSettings(
            caFile: certificates.appendingPathComponent("ca.crt").path,
            certificateFile: service.map { certificates.appendingPathComponent("\($0).crt").path },
            keyFile: service.map { certificates.appendingPathComponent("\($0).key").path })
        return try .client(settings, logger: logger)
    }

    /// Records how each call's connection was secured.
    final class TransportRecorder: ServerInterceptor {
        let seen = Mutex<[TransportSecurity]>([])

        func intercept(context: ServerContext, next: @Sendable (ServerContext) async throws -> Void) async throws {
            seen.withLock { $0.append(context.transport) }
            try await next(context)
        }
    }

    @Test func callsOfEveryShapeCrossTLSAndTheServerSeesTheClientCertificate() async throws {
        let certificates = try Self.certificates()
        defer { try? FileManager.default.removeItem(at: certificates) }
        let recorder = TransportRecorder()
        let serverTLS = try Self.server(certificates, service: "audit")
        try await withEchoServer(configure: { $0.tls = serverTLS }, interceptors: [recorder]) { _, port in
            let clientTLS = try Self.client(certificates, presenting: "gateway")
            let channel = channel(to: port) { $0.tls = clientTLS }
            let client = Portal_Testing_V1_EchoClient(channel: channel)

            var large = Request()
            large.message = "large"
            large.responseSize = 3 << 20  // many TLS records, past every flow-control window
            let response = try await client.get(large)
            #expect(response.payload.count == 3 << 20)

            var many = Request()
            many.responseCount = 500
            many.responseSize = 4000
            var count = 0
            for try await _ in try await client.expand(many) { count += 1 }
            #expect(count == 500)

            let collected = try await client.collect { writer in
                for word in ["licenses", "over", "TLS"] {
                    var request = Request()
                    request.message = word
                    try await writer.write(request)
                }
            }
            #expect(collected.message == "licenses over TLS")
            await channel.close()
        }
        let seen = recorder.seen.withLock { $0 }
        #expect(seen.count == 3)
        for transport in seen {
            guard case .tls(let certificate?) = transport else {
                Issue.record("expected TLS with a client certificate, got \(transport)")
                continue
            }
            #expect(certificate.isVerified)
            #expect(certificate.dnsNames.contains("gateway"))
            #expect(certificate.ipAddresses.contains("127.0.0.1"))
            #expect(certificate.subject.hasPrefix("CN=gateway"))
        }
    }

    @Test func theClientRefusesACertificateForAnotherName() async throws {
        let certificates = try Self.certificates()
        defer { try? FileManager.default.removeItem(at: certificates) }
        let serverTLS = try Self.server(certificates, service: "audit")
        try await withEchoServer(configure: { $0.tls = serverTLS }) { _, port in
            let clientTLS = try Self.client(certificates, presenting: "gateway")
            let channel = channel(to: port) {
                $0.tls = clientTLS
                $0.serverName = "identity"
            }
            let error = await #expect(throws: RPCError.self) {
                _ = try await Portal_Testing_V1_EchoClient(channel: channel).get(Request())
            }
            #expect(error?.code == .unavailable)
            #expect(
                error?.message.contains("the server's certificate was refused: hostname mismatch") == true,
                "\(String(describing: error))")
            await channel.close()
        }
    }

    @Test func filesThatDoNotLoadAreNamedInTheError() throws {
        let certificates = try Self.certificates()
        defer { try? FileManager.default.removeItem(at: certificates) }
        let missing = TLSServerSettings(
            certificateFile: "/nonexistent/server.crt", keyFile: certificates.appendingPathComponent("audit.key").path)
        #expect(throws: TLSConfigurationError.self) { try TLSContextSource.server(missing, logger: Self.logger) }
        let notACertificate = TLSServerSettings(
            certificateFile: certificates.appendingPathComponent("audit.key").path,
            keyFile: certificates.appendingPathComponent("audit.key").path)
        do {
            _ = try TLSContextSource.server(notACertificate, logger: Self.logger)
            Issue.record("a key file passed as the certificate was accepted")
        } catch let error as TLSConfigurationError {
            #expect(
                error.description.hasPrefix(
                    "tls-cert \(certificates.appendingPathComponent("audit.key").path): not a usable PEM certificate"))
        }
    }
}
