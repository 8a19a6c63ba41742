import EnclaveCore
import Testing

@Suite("Enclave configuration")
struct ConfigTests {
    func parse(_ json: String) throws -> EnclaveConfig { try EnclaveConfig(jsonBytes: Array(json.utf8)) }

    @Test func parsesAllFields() throws {
        let config = try parse(#"{"productID":7,"securityVersion":3,"debug":true,"maxThreads":8,"maxMemory":"256MiB"}"#)
        #expect(
            config == EnclaveConfig(productID: 7, securityVersion: 3, debug: true, maxThreads: 8, maxMemory: 256 << 20)
        )
        #expect(try parse(#"{"productID":1,"securityVersion":0,"maxMemory":134217728}"#).maxMemory == 128 << 20)
    }

    @Test func appliesDefaults() throws {
        let config = try parse(#"{"productID":1,"securityVersion":2}"#)
        #expect(!config.debug)
        #expect(config.maxThreads == 4)
        #expect(config.maxMemory == 1 << 30)
    }

    @Test(arguments: [
        #"{"securityVersion":1}"#,  // missing productID
        #"{"productID":1}"#,  // missing securityVersion
        #"{"productID":70000,"securityVersion":1}"#,  // out of range
        #"{"productID":-1,"securityVersion":1}"#,
        #"{"productID":1.5,"securityVersion":1}"#,
        #"{"productID":1,"securityVersion":1,"debug":1}"#,  // number for a boolean
        #"{"productID":true,"securityVersion":1}"#,  // boolean for a number
        #"{"productID":1,"securityVersion":1,"maxThread":4}"#,  // typo
        #"{"productID":1,"securityVersion":1,"maxThreads":0}"#,
        #"{"productID":1,"securityVersion":1,"maxThreads":5000}"#,
        #"{"productID":1,"securityVersion":1,"maxMemory":"12 parsecs"}"#,
        #"{"productID":1,"securityVersion":1,"maxMemory":1024}"#,  // below 64 MiB
        #"[1,2]"#,
        #"not json"#,
    ])
    func rejectsInvalid(_ json: String) {
        #expect(throws: EnclaveError.invalidConfiguration("")) { try parse(json) }
    }
}
