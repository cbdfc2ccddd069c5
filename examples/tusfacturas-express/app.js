// The Express receiver from TusFacturas' webhook document, as written, except that the token
// and port come from TF_WEBHOOK_TOKEN and PORT, and it listens on HOST (default all interfaces).
//   npm install && TF_WEBHOOK_TOKEN=<the endpoint's token> PORT=3000 node app.js
const express = require('express');
const bodyParser = require('body-parser');
const app = express();
const port = Number(process.env.PORT || 3000);
const TF_WEBHOOK_TOKEN = process.env.TF_WEBHOOK_TOKEN || 'TOKEN_TF';
app.use(bodyParser.json());
app.post('/webhook', (req, res) => {
    console.log('Webhook received!');
    const headerToken = req.headers['tf-webhooktoken'];
    if (headerToken !== TF_WEBHOOK_TOKEN) {
        console.warn('Unauthorized webhook access: Token mismatch.');
        return res.status(403).send('El Token recibido no coincide con el esperado');
    }
    const data = req.body;
    if (!data) {
        console.error('No JSON data received in webhook request.');
        return res.status(400).send('No se recibió información en formato JSON.');
    }
    console.log('Webhook data:', data);
    try {
        const externalReference = data.external_reference;
        if (externalReference) {
            consultarPorExtRef(externalReference);
        } else {
            console.warn("Webhook data missing 'external_reference' key.");
        }
        console.log('Webhook processed successfully. Sending 200 OK.');
        res.status(200).send('OK');
    } catch (error) {
        console.error('Error processing webhook:', error);
        res.status(200).send('OK (processed with internal error)');
    }
});
function consultarPorExtRef(extRef) {
    console.log(`Consulting info for external_reference: ${extRef}`);
}
app.listen(port, process.env.HOST, () => {
    console.log(`Node.js Webhook listener running on http://localhost:${port}`);
});
