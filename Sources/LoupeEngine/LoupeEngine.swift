// LoupeEngine
