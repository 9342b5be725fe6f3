module github.com/firstparty/firstparty/tools

go 1.26.8

require (
	github.com/firstparty/firstparty/pkg v0.0.0
	github.com/segmentio/kafka-go v0.4.51
)

require (
	github.com/klauspost/compress v1.20.1 // indirect
	github.com/pierrec/lz4/v4 v4.1.27 // indirect
)

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0
	github.com/firstparty/firstparty/proto v0.0.0
	github.com/google/uuid v1.6.0 // indirect
	github.com/valyala/fastjson v1.6.10 // indirect
	google.golang.org/protobuf v1.36.12
)

replace github.com/firstparty/firstparty/pkg => ../pkg

replace github.com/firstparty/firstparty/proto => ../proto
