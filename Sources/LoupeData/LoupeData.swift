// LoupeData
