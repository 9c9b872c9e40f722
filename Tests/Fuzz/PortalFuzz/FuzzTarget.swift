/// One thing under fuzzing: it takes any bytes and must neither crash nor break its own invariants
/// (a broken invariant traps, which libFuzzer reports with the input).
struct FuzzTarget: Sendable {
    /// The name `scripts/fuzz` and `PORTAL_FUZZ_TARGET` use.
    let name: String
    /// Runs one input.
    let run: @Sendable ([UInt8]) -> Void

    /// Every fuzz target.
    static let all = [
        FuzzTarget(name: "protobuf", run: ProtobufDecoding.run), FuzzTarget(name: "deframer", run: GRPCDeframing.run),
        FuzzTarget(name: "http2-server", run: HTTP2ServerInput.run),
        FuzzTarget(name: "page-token", run: PageTokenDecoding.run),
        FuzzTarget(name: "csv", run: CSVWriting.run), FuzzTarget(name: "protojson", run: ProtoJSONConversion.run),
    ]

    /// The target called `name`, if any.
    static func named(_ name: String) -> FuzzTarget? {
        all.first { $0.name == name }
    }
}

/// Traps with `message` when `condition` is false: an invariant a target checks on every input.
func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant broken: \(message())") }
}
