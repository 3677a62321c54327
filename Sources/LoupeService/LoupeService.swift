// LoupeService
