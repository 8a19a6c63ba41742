public import EnclaveCore

// The calls Tests/TestEnclave serves, shared by the enclave and the host tests.

public enum Echo: EnclaveCall {
    public typealias Input = [UInt8]
    public typealias Output = [UInt8]
    public static var name: String { "test.echo" }
}

public enum Identity: EnclaveCall {
    public typealias Input = Empty
    public typealias Output = EnclaveIdentity
    public static var name: String { "test.identity" }
}

public enum Attempt: EnclaveCall {
    public typealias Input = String
    public typealias Output = Int32
    public static var name: String { "test.attempt" }
}

public enum Crash: EnclaveCall {
    public typealias Input = String
    public typealias Output = Empty
    public static var name: String { "test.crash" }
}

public enum Sleep: EnclaveCall {
    public typealias Input = UInt64
    public typealias Output = Int
    public static var name: String { "test.sleep" }
}

public enum Fail: EnclaveCall {
    public typealias Input = String
    public typealias Output = Empty
    public static var name: String { "test.fail" }
}

public enum AskHost: EnclaveCall {
    public typealias Input = String
    public typealias Output = String
    public static var name: String { "test.askHost" }
}

public enum HostTransform: EnclaveCall {
    public typealias Input = String
    public typealias Output = String
    public static var name: String { "test.hostTransform" }
}
