import TestSupport

// The shared test support (Tests/TestSupport), under the names every file of this target uses.

typealias ChildProcess = TestSupport.ChildProcess
typealias ServedProcess = TestSupport.ServedProcess
typealias Vectors = TestSupport.Vectors
