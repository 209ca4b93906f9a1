import TCPFallbackCommandLine

await CommandLineTool.main()
