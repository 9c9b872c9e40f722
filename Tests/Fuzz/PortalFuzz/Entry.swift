#if PORTAL_FUZZING
import Foundation

/// The target `PORTAL_FUZZ_TARGET` names, chosen once.
private let selected: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["PORTAL_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget.named(name) else {
        fatalError(
            "PORTAL_FUZZ_TARGET must be one of \(FuzzTarget.all.map(\.name).joined(separator: ", ")), not \"\(name)\"")
    }
    return target
}()

/// libFuzzer's driver (in its runtime, linked by `-sanitize=fuzzer`). Declared by symbol name: its
/// arguments are pointers and its result an int, which Swift passes exactly as C does on the
/// platforms this runs on.
@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// With the fuzzer: libFuzzer runs the selected target on every input it makes, with its usual
/// command line (`-max_total_time=…`, corpus folders).
@main
struct Fuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        _ = selected
        exit(
            runFuzzerDriver(&argc, &argv) { data, count in
                selected.run(count == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: count)))
                return 0
            })
    }
}
#else
import Foundation

/// Without the fuzzer: `portal-fuzz TARGET FILE|DIR…` runs every file once through the target, to
/// replay a corpus or a crash; exits 0 when all ran.
@main
struct Replay {
    static func main() throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let name = arguments.first, let target = FuzzTarget.named(name) else {
            FileHandle.standardError.write(
                Data("usage: portal-fuzz \(FuzzTarget.all.map(\.name).joined(separator: "|")) FILE|DIR…\n".utf8))
            exit(64)
        }
        var count = 0
        for path in arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            let files =
                isDirectory.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map {
                    (path as NSString).appendingPathComponent($0)
                }
                : [path]
            for file in files {
                target.run(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
                count += 1
            }
        }
        print("\(name): \(count) inputs ran")
    }
}
#endif
