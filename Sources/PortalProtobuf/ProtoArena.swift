#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#else
import Darwin
#endif

/// Bump allocator for the C memory a message needs while it is packed; freed all at once.
///
/// A handle to state on the encoding call's stack (`ProtoArena.with`), so encoding allocates no
/// object for it and writers pass it around without reference counting. Used by one encoding call
/// on one thread; never shared, never kept beyond `with`.
@usableFromInline
struct ProtoArena {
    private struct State {
        /// The first standard block, kept by the thread for the next arena once this one is done.
        var firstBlock: UnsafeMutableRawPointer?
        /// Blocks beyond the first.
        var blocks: [UnsafeMutableRawPointer] = []
        var cursor: UnsafeMutableRawPointer?
        var remaining = 0
    }

    private let state: UnsafeMutablePointer<State>
    fileprivate static let blockSize = 4096

    /// Runs `body` with a fresh arena, and frees (or keeps for the thread) its memory afterwards.
    ///
    /// Not generic: callers in other modules cannot specialise it, and a generic result would cost
    /// them run-time type metadata lookups on every message.
    @usableFromInline
    static func with(_ body: (ProtoArena) throws -> Void) rethrows {
        try withUnsafeTemporaryAllocation(of: State.self, capacity: 1) { buffer in
            let state = buffer.baseAddress!
            state.initialize(to: State())
            defer {
                if let firstBlock = state.pointee.firstBlock { SpareBlock.keep(firstBlock) }
                for block in state.pointee.blocks { free(block) }
                state.deinitialize(count: 1)
            }
            try body(ProtoArena(state: state))
        }
    }

    /// Uninitialised memory of `size` bytes, aligned to 16 bytes, valid until the arena's `with` returns.
    ///
    /// Callers initialise everything they hand to protobuf-c (messages through `protobuf_c_message_init`).
    @usableFromInline
    func allocate(_ size: Int) -> UnsafeMutableRawPointer {
        let rounded = (max(size, 1) + 15) & ~15
        if rounded > state.pointee.remaining {
            if rounded > Self.blockSize / 2 {
                return newBlock(rounded)
            }
            if state.pointee.firstBlock == nil {
                let first = SpareBlock.take() ?? Self.allocateBlock(Self.blockSize)
                state.pointee.firstBlock = first
                state.pointee.cursor = first
            } else {
                state.pointee.cursor = newBlock(Self.blockSize)
            }
            state.pointee.remaining = Self.blockSize
        }
        let pointer = state.pointee.cursor!
        state.pointee.cursor = pointer + rounded
        state.pointee.remaining -= rounded
        return pointer
    }

    /// A NUL-terminated copy of `string` in arena memory.
    ///
    /// protobuf-c strings end at the first NUL, so a NUL inside `string` is sent as U+FFFD rather
    /// than silently cutting the rest off (decoding refuses such strings for the same reason).
    @usableFromInline
    func cString(_ string: String) -> UnsafeMutablePointer<CChar> {
        var string = string
        let copy = string.withUTF8 { utf8 -> UnsafeMutablePointer<CChar>? in
            let memory = allocate(utf8.count + 1)
            memory.storeBytes(of: 0, toByteOffset: utf8.count, as: UInt8.self)
            guard let base = utf8.baseAddress else { return memory.bindMemory(to: CChar.self, capacity: 1) }
            if memchr(base, 0, utf8.count) != nil { return nil }
            memory.copyMemory(from: base, byteCount: utf8.count)
            return memory.bindMemory(to: CChar.self, capacity: utf8.count + 1)
        }
        return copy ?? cString(string.replacingNULs())
    }

    /// A copy of `bytes` in arena memory.
    @usableFromInline
    func bytes(_ bytes: [UInt8]) -> UnsafeMutablePointer<UInt8> {
        let memory = allocate(bytes.count)
        bytes.withUnsafeBytes { if let base = $0.baseAddress { memory.copyMemory(from: base, byteCount: $0.count) } }
        return memory.bindMemory(to: UInt8.self, capacity: bytes.count)
    }

    /// A block beyond the first, freed with the arena.
    private func newBlock(_ size: Int) -> UnsafeMutableRawPointer {
        let block = Self.allocateBlock(size)
        state.pointee.blocks.append(block)
        return block
    }

    private static func allocateBlock(_ size: Int) -> UnsafeMutableRawPointer {
        guard let block = malloc(size) else { fatalError("out of memory allocating \(size) bytes") }
        return block
    }
}

/// One spare arena block per thread: a message encoded after another on the same thread (every call
/// on an event loop) reuses its first block instead of allocating 4 KiB, which glibc serves from its
/// slow path. Per thread rather than shared, so it needs no lock; freed when the thread ends.
private enum SpareBlock {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key) { block in free(block) }
        precondition(status == 0, "pthread_key_create failed: \(status)")
        return key
    }()

    /// The thread's spare block, if it has one; the caller owns it.
    static func take() -> UnsafeMutableRawPointer? {
        guard let block = pthread_getspecific(key) else { return nil }
        pthread_setspecific(key, nil)
        return block
    }

    /// Keeps `block` (of `ProtoArena.blockSize` bytes) as the thread's spare, or frees it when the thread has one.
    static func keep(_ block: UnsafeMutableRawPointer) {
        if pthread_getspecific(key) == nil {
            pthread_setspecific(key, block)
        } else {
            free(block)
        }
    }
}

extension String {
    fileprivate func replacingNULs() -> String {
        String(String.UnicodeScalarView(unicodeScalars.map { $0 == "\0" ? "\u{FFFD}" : $0 }))
    }
}
