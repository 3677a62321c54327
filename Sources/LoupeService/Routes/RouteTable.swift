// Every route the service answers, and the one file that handles each. Requests are routed once:
// the match gives the template (the metrics' route label) before the handler runs.
//
//   POST /predict                                   Routes/PredictRoute.swift (bodies: InputDecoding.swift, MultipartBody.swift)
//   POST /explain                                   Routes/ExplainRoute.swift (attributions; engine: LoupeEngine/InputGradients.swift)
//   GET  /health, /health/live, /health/ready       Routes/HealthRoutes.swift
//   GET  /v2/health/live, /v2/health/ready          Routes/HealthRoutes.swift
//   GET  /metrics                                   Routes/HealthRoutes.swift (MetricsRoute)
//   GET  /openapi.json                              Routes/OpenAPIRoute.swift (Generated/OpenAPI.swift, from
//                                                   docs/openapi.yaml, cut down to the enabled routes)
//   GET  /v2, /v2/models/{m}[/versions/{v}][/ready] Routes/OIPMetadataRoutes.swift
//   POST /v2/models/{m}[/versions/{v}]/infer        Routes/OIPInferRoute.swift (bodies: OIPRequest.swift)
//   GET  /v2/models/stats, /v2/models/{m}[/versions/{v}]/stats,
//        /v2/models/{m}[/versions/{v}]/config       Routes/OIPStatisticsRoutes.swift (Triton's extensions)
//   POST /feedback, /v2/models/{m}[/versions/{v}]/feedback  Routes/FeedbackRoute.swift
//   POST /v2/repository/…                           Routes/RepositoryRoutes.swift (repository_api.enabled)
//   POST /v2/repository/models/{m}/promote|rollback Routes/PromotionRoutes.swift (repository_api.enabled; safe promotion)
//   GET  /, GET /v1/models/{m}[/versions/{v}],
//   POST /v1/models/{m}[/versions/{v}]:predict      Routes/V1PredictRoutes.swift (TF Serving / KServe v1;
//        …:explain too, which runs ExplainRoute's code)
//   GET  / with Accept: text/html                   Routes/ConsoleRoutes.swift (the web console, Console/ConsolePage.swift + Style, Script)
//   GET  /api/models, /api/status                   Routes/ConsoleRoutes.swift (model cards, live operations)
import LoupeHTTP

extension InferenceService {
    public var routes: [ServiceRoute] {
        let models = ModelResolver(provider: provider, canaryKeyHeader: configuration.promotionCanaryKeyHeader)
        let health = HealthRoutes(readiness: readiness, provider: provider, batcher: batcher, promotion: promotion)
        let predict = PredictRoute(models: models, inputs: inputs, batcher: batcher, recorder: recorder,
                                   defaultTopK: configuration.defaultTopK)
        let metadata = OIPMetadataRoutes(models: models, provider: provider, readiness: readiness,
                                         repositoryAPIEnabled: configuration.repositoryAPIEnabled)
        let explain = ExplainRoute(models: models, inputs: inputs, batcher: batcher, metrics: metrics,
                                   maxPasses: configuration.maxExplainPasses)
        let infer = OIPInferRoute(models: models, inputs: inputs, batcher: batcher, recorder: recorder)
        let statistics = OIPStatisticsRoutes(models: models, provider: provider, statistics: batcher.statistics,
                                             maxImagesPerRequest: configuration.maxImagesPerRequest,
                                             maxBatchSize: configuration.maxBatchSize,
                                             maxQueueDelayMicroseconds: configuration.maxQueueDelayMicroseconds,
                                             workers: configuration.effectiveInferenceWorkers)
        let v1 = V1PredictRoutes(models: models, provider: provider, readiness: readiness, inputs: inputs, batcher: batcher,
                                 recorder: recorder, explainer: explain)
        let feedback = FeedbackRoute(models: models, inputs: inputs, batcher: batcher, window: recorder.window, accuracy: liveAccuracy,
                                     capture: recorder.capture, shadow: recorder.shadow)
        let console = ConsoleRoutes(provider: provider, metrics: metrics, batcher: batcher, sampler: statusSampler,
                                    nonBrowserRoot: v1.serverLive)
        var list: [ServiceRoute] = [
            ServiceRoute(method: .POST, template: "/predict", handler: predict.handle),
            ServiceRoute(method: .POST, template: "/explain", handler: explain.handle),
            ServiceRoute(method: .GET, template: "/health", handler: health.health),
            ServiceRoute(method: .GET, template: "/health/live", handler: health.live),
            ServiceRoute(method: .GET, template: "/health/ready", handler: health.ready),
            ServiceRoute(method: .GET, template: "/v2", handler: metadata.serverMetadata),
            ServiceRoute(method: .GET, template: "/v2/health/live", handler: health.v2Live),
            ServiceRoute(method: .GET, template: "/v2/health/ready", handler: health.v2Ready),
            ServiceRoute(method: .GET, template: "/v2/models/{m}", handler: metadata.modelMetadata),
            ServiceRoute(method: .GET, template: "/v2/models/{m}/versions/{v}", handler: metadata.modelMetadata),
            ServiceRoute(method: .GET, template: "/v2/models/{m}/ready", handler: metadata.modelReady),
            ServiceRoute(method: .GET, template: "/v2/models/{m}/versions/{v}/ready", handler: metadata.modelReady),
            ServiceRoute(method: .POST, template: "/v2/models/{m}/infer", handler: infer.handle),
            ServiceRoute(method: .POST, template: "/v2/models/{m}/versions/{v}/infer", handler: infer.handle),
            ServiceRoute(method: .GET, template: "/v2/models/stats", handler: statistics.stats),
            ServiceRoute(method: .GET, template: "/v2/models/{m}/stats", handler: statistics.stats),
            ServiceRoute(method: .GET, template: "/v2/models/{m}/versions/{v}/stats", handler: statistics.stats),
            ServiceRoute(method: .GET, template: "/v2/models/{m}/config", handler: statistics.config),
            ServiceRoute(method: .GET, template: "/v2/models/{m}/versions/{v}/config", handler: statistics.config),
            ServiceRoute(method: .GET, template: "/", handler: console.index),
            ServiceRoute(method: .GET, template: "/api/models", handler: console.models),
            ServiceRoute(method: .GET, template: "/api/status", handler: console.status),
            ServiceRoute(method: .GET, template: "/v1/models/{m}", handler: v1.status),
            ServiceRoute(method: .POST, template: "/v1/models/{m}:predict", handler: v1.predict),
            ServiceRoute(method: .GET, template: "/v1/models/{m}/versions/{v}", handler: v1.status),
            ServiceRoute(method: .POST, template: "/v1/models/{m}/versions/{v}:predict", handler: v1.predict),
            ServiceRoute(method: .POST, template: "/v1/models/{m}:explain", handler: v1.explain),
            ServiceRoute(method: .POST, template: "/v1/models/{m}/versions/{v}:explain", handler: v1.explain),
            ServiceRoute(method: .POST, template: "/feedback", handler: feedback.handle),
            ServiceRoute(method: .POST, template: "/v2/models/{m}/feedback", handler: feedback.handle),
            ServiceRoute(method: .POST, template: "/v2/models/{m}/versions/{v}/feedback", handler: feedback.handle),
        ]
        if configuration.repositoryAPIEnabled {
            let promotionRoutes = PromotionRoutes(monitor: promotion, token: configuration.repositoryAPIToken.isEmpty ? nil : configuration.repositoryAPIToken)
            list.append(ServiceRoute(method: .POST, template: "/v2/repository/models/{m}/promote", handler: promotionRoutes.promote))
            list.append(ServiceRoute(method: .POST, template: "/v2/repository/models/{m}/rollback", handler: promotionRoutes.rollback))
        }
        if configuration.metricsEnabled && configuration.metricsPort == 0 {
            list.append(ServiceRoute(method: .GET, template: "/metrics", handler: MetricsRoute(readiness: readiness, registry: metrics.registry).handle))
        }
        list += addedRoutes
        let openAPIRoutes = list.map { (method: $0.method, template: $0.template) } + [(method: .GET, template: "/openapi.json")]
        list.append(ServiceRoute(method: .GET, template: "/openapi.json", handler: OpenAPIRoute(routes: openAPIRoutes).handle))
        return list
    }

    /// The separate metrics listener's routes (`metrics.port` > 0): GET /metrics only.
    public var metricsListenerRoutes: [ServiceRoute] {
        guard configuration.metricsEnabled && configuration.metricsPort > 0 else { return [] }
        return [ServiceRoute(method: .GET, template: "/metrics", handler: MetricsRoute(readiness: readiness, registry: metrics.registry).handle)]
    }

    /// The HTTP handler for `routes`: routes each request once, instruments it under the matched
    /// template, inflates a compressed body (Content-Encoding) for a matched route, then dispatches.
    func httpHandler(_ routes: [ServiceRoute]) -> HTTPHandler {
        var builder = RouterBuilder()
        for route in routes { builder.add(route.method, route.template, route.handler) }
        let router = builder.freeze()
        let maxBodyBytes = configuration.maxBodyBytes
        return { [instrumentation] request, sink in
            let match = router.match(request)
            instrumentation.instrument(consume request, template: match.template, sink: sink) { request, sink in
                guard case .found = match, !request.body.isEmpty, request.headers["Content-Encoding"] != nil else {
                    return router.dispatch(match, consume request, sink: sink)
                }
                switch ContentCoding.decode(request, maxBytes: maxBodyBytes) {
                case .success(let decoded): router.dispatch(match, decoded, sink: sink)
                case .failure(let error): sink.respond(error.response)
                }
            }
        }
    }
}
