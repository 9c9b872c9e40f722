/// One message ready to send: envelope addresses and the RFC 5322 text (CRLF line endings).
public struct OutgoingMail: Sendable {
    /// A stable id; a transport that is retried with the same id may deliver the message twice, never lose it.
    public var id: String
    /// The envelope sender (MAIL FROM), a bare address.
    public var sender: String
    /// The envelope recipient (RCPT TO), a bare address.
    public var recipient: String
    /// Headers and body.
    public var text: String

    /// Creates a message.
    public init(id: String, sender: String, recipient: String, text: String) {
        self.id = id
        self.sender = sender
        self.recipient = recipient
        self.text = text
    }
}

/// Where outgoing mail goes: a spool folder or an SMTP server.
public protocol MailTransport: Sendable {
    /// Hands one message over; returns only once the receiving side has taken responsibility for it.
    func deliver(_ mail: OutgoingMail) async throws
}

/// A delivery failure with the step that failed and what the server said.
public struct MailDeliveryError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public var description: String
}
