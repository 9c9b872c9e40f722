import Foundation
import NIOCore
import NIOPosix

/// Sends each message to an SMTP server (RFC 5321): EHLO, MAIL FROM, RCPT TO, DATA, QUIT, one
/// connection per message. The message counts as delivered once the server answers 250 to DATA.
public struct SMTPMailTransport: MailTransport {
    private let host: String
    private let port: Int
    private let heloName: String
    private let timeout: TimeAmount

    /// A transport to `host:port`, introducing itself as `heloName`.
    public init(host: String, port: Int, heloName: String = "end-customer-portal", timeout: TimeAmount = .seconds(30)) {
        self.host = host
        self.port = port
        self.heloName = heloName
        self.timeout = timeout
    }

    /// Runs one SMTP session for the message.
    public func deliver(_ mail: OutgoingMail) async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { inbound, outbound in
            var session = SMTPSession(inbound: inbound.makeAsyncIterator(), outbound: outbound)
            try await session.expect(220, after: "connect")
            try await session.command("EHLO \(heloName)", expect: 250)
            try await session.command("MAIL FROM:<\(mail.sender)>", expect: 250)
            try await session.command("RCPT TO:<\(mail.recipient)>", expect: 250, 251)
            try await session.command("DATA", expect: 354)
            try await session.send(Self.dotStuffed(mail.text) + ".\r\n")
            try await session.expect(250, after: "end of data")
            try? await session.command("QUIT", expect: 221)
        }
    }

    /// The text with CRLF line endings and every line starting with "." doubled (RFC 5321 §4.5.2).
    static func dotStuffed(_ text: String) -> String {
        var lines = text.replacingOccurrences(of: "\r\n", with: "\n").split(
            separator: "\n", omittingEmptySubsequences: false
        ).map(String.init)
        if lines.last == "" { lines.removeLast() }
        return lines.map { $0.hasPrefix(".") ? "." + $0 : $0 }.joined(separator: "\r\n") + "\r\n"
    }
}

/// Reads SMTP replies (possibly multi-line) and writes commands on one connection.
private struct SMTPSession {
    var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    var pending = ""

    mutating func command(_ line: String, expect codes: Int...) async throws {
        try await send(line + "\r\n")
        let reply = try await readReply()
        guard codes.contains(reply.code) else {
            throw MailDeliveryError(
                description:
                    "SMTP \(line.split(separator: " ").first ?? ""): server answered \(reply.code) \(reply.text)")
        }
    }

    mutating func expect(_ code: Int, after step: String) async throws {
        let reply = try await readReply()
        guard reply.code == code else {
            throw MailDeliveryError(description: "SMTP \(step): server answered \(reply.code) \(reply.text)")
        }
    }

    func send(_ text: String) async throws {
        try await outbound.write(ByteBuffer(string: text))
    }

    /// One reply: lines "NNN-text" continue it, the line "NNN text" ends it.
    mutating func readReply() async throws -> (code: Int, text: String) {
        var text: [String] = []
        while true {
            while let end = pending.range(of: "\r\n") {
                let line = String(pending[..<end.lowerBound])
                pending = String(pending[end.upperBound...])
                guard line.count >= 3, let code = Int(line.prefix(3)) else {
                    throw MailDeliveryError(description: "SMTP: malformed reply \"\(line)\"")
                }
                text.append(String(line.dropFirst(4)))
                if line.count == 3 || line[line.index(line.startIndex, offsetBy: 3)] == " " {
                    return (code, text.joined(separator: " "))
                }
            }
            guard let buffer = try await inbound.next() else {
                throw MailDeliveryError(description: "SMTP: the server closed the connection")
            }
            pending += String(buffer: buffer)
        }
    }
}
