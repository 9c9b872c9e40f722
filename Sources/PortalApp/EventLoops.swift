import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The event loops servers and clients run on: one thread per CPU this process may use.
public enum EventLoops {
    /// Shared by every server and channel of the process.
    public static let shared: MultiThreadedEventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: usableCPUCount)

    /// CPUs in the process's affinity mask (taskset, cpusets), which can be fewer than the machine has.
    public static var usableCPUCount: Int {
        #if canImport(Glibc)
        // /proc/self/status has "Cpus_allowed:\tff,ffffffff" (a hex mask); each set bit is a usable CPU.
        if let file = fopen("/proc/self/status", "r") {
            defer { fclose(file) }
            var line = [CChar](repeating: 0, count: 4096)
            while fgets(&line, Int32(line.count), file) != nil {
                let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                guard text.hasPrefix("Cpus_allowed:") else { continue }
                let count = text.dropFirst("Cpus_allowed:".count).reduce(0) { total, character in
                    total + (character.hexDigitValue?.nonzeroBitCount ?? 0)
                }
                if count > 0 { return min(count, System.coreCount) }
            }
        }
        #endif
        return System.coreCount
    }
}
