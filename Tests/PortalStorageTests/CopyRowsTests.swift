import Testing

@testable import PortalStorage

@Suite("COPY rows in PostgreSQL's text format")
struct CopyRowsTests {
    @Test func fieldsAreSeparatedByTabsRowsEndInNewlinesAndReservedBytesEscaped() {
        var leading = CopyRows()
        leading.append("a\tb\nc\rd\\e")
        leading.append(Int64(-42))
        var rows = CopyRows()
        rows.append(fieldsOf: leading)
        rows.append(bytes: [0x00, 0xab, 0xff])
        rows.endRow()
        rows.append("ünï")
        rows.endRow()
        #expect(String(decoding: rows.bytes, as: UTF8.self) == "a\\tb\\nc\\rd\\\\e\t-42\t\\\\x00abff\nünï\n")
    }
}
