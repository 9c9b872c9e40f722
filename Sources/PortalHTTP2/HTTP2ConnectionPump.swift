import NIOCore

/// What a connection's pump keeps between calls: its channel, and whether output is scheduled or over.
struct HTTP2PumpState {
    var context: ChannelHandlerContext?
    var flushScheduled = false
    /// The write side is closed (the last frames are out); nothing more is written.
    var outputClosed = false
    /// Events are being handled; output produced meanwhile is handled by the same loop.
    var handlingEvents = false
    /// Input was read and the channel's read-complete, which writes everything queued, is still to come.
    var readPending = false
    /// The buffer of the last write, cleared and filled again by the next one: once the channel has
    /// written it, no other reference is left and its storage is reused instead of allocated anew.
    var outputBuffer: ByteBuffer?

    /// Output buffers up to this capacity are kept for the next write.
    static let keptOutputCapacity = 64 << 10
}

/// The I/O shared by server and client connections: socket bytes into nghttp2, events out of it,
/// frames back to the socket (batched, only while the channel is writable), and closing so that the
/// last frames reach the peer.
///
/// A connection provides its session and `handle(_:)`; everything here runs on its event loop.
protocol HTTP2ConnectionPump: AnyObject {
    /// The connection's nghttp2 session.
    var session: NGHTTP2Session { get }
    /// The pump's own state.
    var pump: HTTP2PumpState { get set }
    /// Handles one event of the session, after nghttp2 returned.
    func handle(_ event: HTTP2Event)
}

extension HTTP2ConnectionPump {
    /// Takes the channel (from `handlerAdded`); what is queued (our SETTINGS) goes out once it is active.
    func attach(_ context: ChannelHandlerContext) {
        pump.context = context
        if context.channel.isActive { flushNow() }
    }

    /// Drops the context (from `handlerRemoved`), which holds the handler: keeping it would keep the
    /// connection alive forever.
    func detach() {
        pump.context = nil
    }

    /// Writes what waited for the channel to become active or writable, and passes the event on.
    func channelCanWrite(_ context: ChannelHandlerContext, becameActive: Bool) {
        if becameActive || context.channel.isWritable { flushNow() }
        if becameActive {
            context.fireChannelActive()
        } else {
            context.fireChannelWritabilityChanged()
        }
    }

    /// Feeds socket bytes to the session and handles what they caused; false when the peer broke the protocol.
    func pumpInput(_ buffer: ByteBuffer) -> Bool {
        pump.readPending = true
        let accepted = buffer.withUnsafeReadableBytes { session.receive($0) }
        handleEvents()
        return accepted
    }

    /// Writes what the input read since the last call produced (from `channelReadComplete`).
    func inputComplete() {
        pump.readPending = false
        flushNow()
    }

    /// Handles the session's recorded events in order, including any that handling them adds.
    func handleEvents() {
        guard !pump.handlingEvents else { return }
        pump.handlingEvents = true
        var index = 0
        while index < session.events.count {
            handle(session.events[index])
            index += 1
        }
        session.clearEvents()
        pump.handlingEvents = false
    }

    /// Writes every frame the session has ready, now; closes when the session is done or failed.
    func flushNow() {
        guard let context = pump.context, !pump.outputClosed, context.channel.isActive, context.channel.isWritable
        else { return }
        if !writeFrames(context) { closeAfterFlushing() }
    }

    /// Writes the frames nghttp2 has ready; false once the session is done (after GOAWAY) or failed.
    private func writeFrames(_ context: ChannelHandlerContext) -> Bool {
        var buffer = pump.outputBuffer.take() ?? context.channel.allocator.buffer(capacity: 16 << 10)
        buffer.clear()
        let healthy = session.send(into: &buffer)
        if buffer.readableBytes > 0 {
            context.writeAndFlush(NIOAny(buffer), promise: nil)
        }
        if buffer.capacity <= HTTP2PumpState.keptOutputCapacity { pump.outputBuffer = buffer }
        handleEvents()
        return healthy && session.isAlive
    }

    /// Writes the session's frames later in this event-loop turn, once for everything queued meanwhile;
    /// during a read, its read-complete does.
    func flushSoon() {
        guard !pump.flushScheduled, !pump.readPending, let context = pump.context else { return }
        pump.flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.pump.flushScheduled = false
            self.flushNow()
        }
    }

    /// Half-closes so the peer reads our last frames (a GOAWAY) before the socket goes, then closes
    /// within a second. Closing at once with unread input makes the kernel send a TCP reset, which
    /// can overtake the GOAWAY.
    func closeAfterFlushing() {
        guard let context = pump.context, !pump.outputClosed else { return }
        pump.outputClosed = true
        if context.channel.isActive { _ = writeFrames(context) }
        context.close(mode: .output, promise: nil)
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) { self.closeNow() }
    }

    /// Closes the connection now.
    func closeNow() {
        pump.context?.close(promise: nil)
    }
}
