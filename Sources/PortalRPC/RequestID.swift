/// Request ids: the client's when it is safe to log, otherwise a fresh one.
public enum RequestID {
    /// The client's id when it has 1 to 128 characters from `[A-Za-z0-9._-]`.
    public static func accepting(_ candidate: String) -> String? {
        guard (1...128).contains(candidate.utf8.count),
            candidate.utf8.allSatisfy({
                $0 == 0x2D || $0 == 0x2E || $0 == 0x5F || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0)
                    || (0x61...0x7A).contains($0)
            })
        else { return nil }
        return candidate
    }

    /// Fresh ids for one connection: a random 64-bit prefix and a counter, unique without a syscall per call.
    public struct Generator {
        private let prefix: String
        private var counter: UInt64 = 0

        public init() {
            let hex = String(UInt64.random(in: .min ... .max), radix: 16)
            prefix = String(repeating: "0", count: 16 - hex.count) + hex
        }

        /// The next id of this connection: the prefix, a dash and the counter in hex, built in one allocation.
        public mutating func next() -> String {
            counter += 1
            let digits = (64 - counter.leadingZeroBitCount + 3) / 4
            return String(unsafeUninitializedCapacity: prefix.utf8.count + 1 + digits) { buffer in
                var end = buffer.initialize(fromContentsOf: prefix.utf8)
                buffer[end] = UInt8(ascii: "-")
                end += 1
                var value = counter
                for index in stride(from: end + digits - 1, through: end, by: -1) {
                    buffer[index] = Self.hexDigits[Int(value & 0xF)]
                    value >>= 4
                }
                return end + digits
            }
        }

        private static let hexDigits = Array("0123456789abcdef".utf8)
    }
}
