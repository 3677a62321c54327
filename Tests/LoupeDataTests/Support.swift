import Glibc
@testable import LoupeData

