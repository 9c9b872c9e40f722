import Foundation
import NIOCore
import NIOPosix
import PortalMail
import Synchronization
import Testing

/// A one-connection SMTP server on a loopback port that answers as told and records what it got.
private final class SMTPServer: Sendable {
    let port: Int
    private let channel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
    private let transcript = Transcript()

    /// What the client sent.
    private final class Transcript: Sendable {
        let text = Mutex("")
    }

    /// A server refusing the `RCPT` command with 550 when `refusingRecipient`.
    init(refusingRecipient: Bool = false) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        port = channel.channel.localAddress!.port!
        let transcript = transcript
        Task { [channel] in
            try await channel.executeThenClose { connections in
                for try await connection in connections {
                    try await connection.executeThenClose { inbound, outbound in
                        try await outbound.write(ByteBuffer(string: "220 test ESMTP\r\n"))
                        var pending = ""
                        var inData = false
                        for try await buffer in inbound {
                            pending += String(buffer: buffer)
                            transcript.text.withLock { $0 += String(buffer: buffer) }
                            while let end = pending.range(of: inData ? "\r\n.\r\n" : "\r\n") {
                                let line = String(pending[..<end.lowerBound])
                                pending = String(pending[end.upperBound...])
                                let reply: String
                                if inData {
                                    inData = false
                                    reply = "250 queued"
                                } else if line.hasPrefix("EHLO") || line.hasPrefix("MAIL") {
                                    reply = "250 ok"
                                } else if line.hasPrefix("RCPT") {
                                    reply = refusingRecipient ? "550 no such user" : "250 ok"
                                } else if line == "DATA" {
                                    inData = true
                                    reply = "354 go ahead"
                                } else {
                                    reply = "221 bye"
                                }
                                try await outbound.write(ByteBuffer(string: reply + "\r\n"))
                                if reply.hasPrefix("221") { return }
                            }
                        }
                    }
                    return
                }
            }
        }
    }

    var received: String { transcript.text.withLock { $0 } }
}

@Suite("Mail transports")
struct MailTransportTests {
    static let mail = OutgoingMail(
        id: "msg-1/../x", sender: "no-reply@portal.test", recipient: "ada@example.com",
        text: "Subject: hi\r\n\r\n.a line starting with a dot\r\nInvite code: s3cret\r\n")

    @Test func theSpoolWritesOneFilePerMessageUnderANameFromItsID() async throws {
        let folder = NSTemporaryDirectory() + "spool-test-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let spool = try SpoolMailTransport(folder: folder)
        try await spool.deliver(Self.mail)
        try await spool.deliver(Self.mail)  // a retry rewrites the same file
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["msg-1x.eml"])
        #expect(try String(contentsOfFile: folder + "/msg-1x.eml", encoding: .utf8) == Self.mail.text)
    }

    @Test func smtpSendsTheEnvelopeAndTheDotStuffedMessage() async throws {
        let server = try await SMTPServer()
        try await SMTPMailTransport(host: "127.0.0.1", port: server.port).deliver(Self.mail)
        let received = server.received
        #expect(received.contains("MAIL FROM:<no-reply@portal.test>\r\n"))
        #expect(received.contains("RCPT TO:<ada@example.com>\r\n"))
        #expect(received.contains("\r\n..a line starting with a dot\r\nInvite code: s3cret\r\n.\r\n"))
    }

    @Test func aRefusedRecipientFailsTheDeliveryNamingTheCommand() async throws {
        let server = try await SMTPServer(refusingRecipient: true)
        let error = await #expect(throws: MailDeliveryError.self) {
            try await SMTPMailTransport(host: "127.0.0.1", port: server.port).deliver(Self.mail)
        }
        #expect(error?.description == "SMTP RCPT: server answered 550 no such user")
    }
}
